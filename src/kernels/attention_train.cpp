#include "kernels/attention_train.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/parallel_for.h"
#include "kernels/exp_rows.h"
#include "kernels/gemm.h"

namespace dsv3::kernels {
namespace {

// Query rows per block: 64 rows × T keys × 4 B = 64 KiB of scores per buffer at T = 256, in L2;
// a multiple of the GEMM micro-tile height (6) would not matter here, the keys dimension dominates.
constexpr int64_t kQueryBlock = 64;

// Per-thread block buffers (slot 0: scores / P, slot 1: dP / dS): grow to the longest sequence
// seen, then never reallocate.
float* block_scratch(int slot, int64_t n) {
  thread_local std::vector<float> buf[2];
  if (int64_t(buf[slot].size()) < n) buf[slot].resize(size_t(n));
  return buf[slot].data();
}

// Scores of query rows [s0, s0 + rows) of head h against keys [0, s0 + rows): S (rows, ld).
void block_scores(float* s, int64_t ld, HeadsView<const float> q, HeadsView<const float> k, int64_t h, int64_t s0,
                  int64_t rows, int64_t dqk) {
  gemm(s, ld, q.at(s0, h), q.tok_stride, Op::N, k.at(0, h), k.tok_stride, Op::T, rows, s0 + rows, dqk, false);
}

}  // namespace

void attention_causal_forward(HeadsView<float> out, float* lse, HeadsView<const float> q, HeadsView<const float> k,
                              HeadsView<const float> v, int64_t T, int64_t H, int64_t dqk, int64_t dv, float scale) {
  DSV3_CHECK(scale > 0.0f, "attention_causal_forward: scale {} must be positive", scale);
  parallel_for(H, [&](int64_t h) {
    float* p = block_scratch(0, kQueryBlock * T);
    for (int64_t s0 = 0; s0 < T; s0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, T - s0), keys = s0 + rows;
      block_scores(p, T, q, k, h, s0, rows, dqk);
      for (int64_t i = 0; i < rows; ++i) {
        float* row = p + i * T;
        const int64_t n = s0 + i + 1;  // visible keys
        const float shift = scale * row_max(row, n);
        const double sum = row_sum_exp(row, n, scale, shift);
        lse[h * T + s0 + i] = float(double(shift) + std::log(sum));
        row_exp(row, row, n, scale, shift, float(1.0 / sum), false);
        std::fill(row + n, row + keys, 0.0f);
      }
      gemm(out.at(s0, h), out.tok_stride, p, T, Op::N, v.at(0, h), v.tok_stride, Op::N, rows, dv, keys, false);
    }
  });
}

void attention_causal_backward(HeadsView<float> dq, HeadsView<float> dk, HeadsView<float> dv,
                               HeadsView<const float> dout, HeadsView<const float> out, const float* lse,
                               HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v, int64_t T,
                               int64_t H, int64_t dqk, int64_t dv_dim, float scale) {
  DSV3_CHECK(scale > 0.0f, "attention_causal_backward: scale {} must be positive", scale);
  parallel_for(H, [&](int64_t h) {
    float* p = block_scratch(0, kQueryBlock * T);
    float* ds = block_scratch(1, kQueryBlock * T);
    for (int64_t s0 = 0; s0 < T; s0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, T - s0), keys = s0 + rows;
      block_scores(p, T, q, k, h, s0, rows, dqk);
      // dP (rows, keys) = dO_b · Vᵀ
      gemm(ds, T, dout.at(s0, h), dout.tok_stride, Op::N, v.at(0, h), v.tok_stride, Op::T, rows, keys, dv_dim, false);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t s = s0 + i, n = s + 1;  // visible keys
        float* prow = p + i * T;
        float* drow = ds + i * T;
        row_exp(prow, prow, n, scale, lse[h * T + s], 1.0f, false);
        // D_s = dO_s·O_s equals Σ_t P_st·dP_st (O_s = Σ_t P_st·v_t); summed in double like the twin.
        const float* go = dout.at(s, h);
        const float* os = out.at(s, h);
        double d = 0.0;
        for (int64_t j = 0; j < dv_dim; ++j) d += double(go[j]) * double(os[j]);
        const float df = float(d);
        for (int64_t t = 0; t < n; ++t) drow[t] = scale * prow[t] * (drow[t] - df);
        std::fill(prow + n, prow + keys, 0.0f);
        std::fill(drow + n, drow + keys, 0.0f);
      }
      // dQ_b += dS · K;  dK[0, keys) += dSᵀ · Q_b;  dV[0, keys) += Pᵀ · dO_b
      gemm(dq.at(s0, h), dq.tok_stride, ds, T, Op::N, k.at(0, h), k.tok_stride, Op::N, rows, dqk, keys, true);
      gemm(dk.at(0, h), dk.tok_stride, ds, T, Op::T, q.at(s0, h), q.tok_stride, Op::N, keys, dqk, rows, true);
      gemm(dv.at(0, h), dv.tok_stride, p, T, Op::T, dout.at(s0, h), dout.tok_stride, Op::N, keys, dv_dim, rows, true);
    }
  });
}

}  // namespace dsv3::kernels
