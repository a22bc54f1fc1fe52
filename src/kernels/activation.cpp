#include "kernels/activation.h"

#include <algorithm>
#include <limits>

namespace dsv3::kernels {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float sg = sigmoid(gate[i]);
    const float silu_g = gate[i] * sg;
    dgate[i] += dout[i] * up[i] * (sg * (1.0f + gate[i] * (1.0f - sg)));
    dup[i] += dout[i] * silu_g;
  }
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
