#include "kernels/activation.h"

#include <algorithm>
#include <limits>

#include "core/parallel_for.h"
#include "kernels/avx2.h"
#include "kernels/dispatch.h"

namespace dsv3::kernels {
namespace {

// Element-wise, so threads split the elements: each is computed the same way by any thread.
// Below kParallelMin elements (a decode step's one token) the caller's thread does it all: a
// parallel region costs more than the work.
constexpr int64_t kParallelMin = int64_t(1) << 15;

template <typename F>
void split_elements(int64_t n, F&& f) {
  if (n < kParallelMin) return f(int64_t(0), n);
  parallel_chunks(n, f);
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  const bool fast = avx2_kernels();
  split_elements(n, [&](int64_t b, int64_t e) {
    if (fast) return avx2::swiglu_forward(out + b, gate + b, up + b, e - b);
    for (int64_t i = b; i < e; ++i) out[i] = silu(gate[i]) * up[i];
  });
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  const bool fast = avx2_kernels();
  split_elements(n, [&](int64_t b, int64_t e) {
    if (fast) return avx2::swiglu_backward(dgate + b, dup + b, dout + b, gate + b, up + b, e - b);
    for (int64_t i = b; i < e; ++i) {
      const float sg = sigmoid(gate[i]);
      const float silu_g = gate[i] * sg;
      dgate[i] += dout[i] * up[i] * (sg * (1.0f + gate[i] * (1.0f - sg)));
      dup[i] += dout[i] * silu_g;
    }
  });
}

void sigmoid_backward(float* dx, const float* dy, const float* s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * s[i] * (1.0f - s[i]);
}

void softmax_row_backward(float* dx, const float* dy, const float* p, int64_t n) {
  double dot = 0.0;
  for (int64_t i = 0; i < n; ++i) dot += double(p[i]) * double(dy[i]);
  for (int64_t i = 0; i < n; ++i) dx[i] += p[i] * float(double(dy[i]) - dot);
}

void softmax_row(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace dsv3::kernels
