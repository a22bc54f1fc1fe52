#include "model/mlp.h"

#include "core/check.h"
#include "core/parallel_for.h"
#include "kernels/activation.h"
#include "kernels/matmul.h"

namespace dsv3 {
namespace {

// Calls f(j, r0, r1) for the part [r0, r1) of job j's rows that lies in the global row range
// [begin, end), where job j owns global rows [start[j], start[j + 1]).
template <typename F>
void for_each_overlap(const std::vector<int64_t>& start, int64_t begin, int64_t end, F&& f) {
  for (size_t j = 0; j + 1 < start.size(); ++j) {
    const int64_t r0 = std::max(begin, start[j]), r1 = std::min(end, start[j + 1]);
    if (r0 < r1) f(j, r0 - start[j], r1 - start[j]);
  }
}

}  // namespace

void mlp_forward(float* y, const float* x, int64_t N, const MlpWeights& w, MlpScratch& scratch) {
  if (N <= kernels::kDecodeMaxTokens) {
    const FfnJob job{&w, x, y, N};
    return grouped_mlp_forward({&job, 1}, scratch);
  }
  const int64_t inter = w.w1.rows;
  float* g = scratch.gate.get(N * inter);
  float* u = scratch.up.get(N * inter);
  kernels::matmul(g, x, w.w1, N);
  kernels::matmul(u, x, w.w3, N);
  kernels::swiglu_forward(g, g, u, N * inter);
  kernels::matmul(y, g, w.w2, N);
}

void grouped_mlp_forward(std::span<const FfnJob> jobs, MlpScratch& s) {
  const size_t J = jobs.size();
  s.hidden_offset.assign(J + 1, 0);
  s.hidden_rows.assign(J + 1, 0);
  s.out_rows.assign(J + 1, 0);
  for (size_t j = 0; j < J; ++j) {
    const FfnJob& job = jobs[j];
    DSV3_CHECK(job.n >= 0 && job.n <= kernels::kDecodeMaxTokens, "grouped FFN with {} tokens", job.n);
    const int64_t inter = job.w->w1.rows, n = job.n;
    s.hidden_offset[j + 1] = s.hidden_offset[j] + n * inter;
    s.hidden_rows[j + 1] = s.hidden_rows[j] + (n > 0 ? inter : 0);
    s.out_rows[j + 1] = s.out_rows[j] + (n > 0 ? job.w->w2.rows : 0);
  }
  float* g = s.gate.get(s.hidden_offset[J]);
  float* u = s.up.get(s.hidden_offset[J]);
  // The kernels called inside a region run serially on the calling thread (parallel_for.h).
  parallel_chunks(s.hidden_rows[J], [&](int64_t begin, int64_t end) {
    for_each_overlap(s.hidden_rows, begin, end, [&](size_t j, int64_t r0, int64_t r1) {
      const FfnJob& job = jobs[j];
      const int64_t inter = job.w->w1.rows, dim = job.w->w1.cols;
      float* gj = g + s.hidden_offset[j];
      float* uj = u + s.hidden_offset[j];
      kernels::matmul(gj + r0, inter, job.x, dim, job.w->w1.row_slice(r0, r1 - r0), job.n);
      kernels::matmul(uj + r0, inter, job.x, dim, job.w->w3.row_slice(r0, r1 - r0), job.n);
      for (int64_t t = 0; t < job.n; ++t) {
        float* gt = gj + t * inter + r0;
        kernels::swiglu_forward(gt, gt, uj + t * inter + r0, r1 - r0);
      }
    });
  });
  parallel_chunks(s.out_rows[J], [&](int64_t begin, int64_t end) {
    for_each_overlap(s.out_rows, begin, end, [&](size_t j, int64_t r0, int64_t r1) {
      const FfnJob& job = jobs[j];
      const int64_t inter = job.w->w1.rows, dim = job.w->w2.rows;
      kernels::matmul(job.y + r0, dim, g + s.hidden_offset[j], inter, job.w->w2.row_slice(r0, r1 - r0), job.n);
    });
  });
}

}  // namespace dsv3
