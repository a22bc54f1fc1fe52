#include "train/linear.h"

#include "core/parallel_for.h"

namespace dsv3 {
namespace {

// Four independent partial sums in a fixed order: deterministic, and lets the compiler keep
// the loop in vector registers without reassociating a single sum.
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t in, int64_t out) {
  parallel_for(N, [&](int64_t t) {
    const float* xt = x + t * in;
    float* yt = y + t * out;
    for (int64_t n = 0; n < out; ++n) yt[n] = dot(xt, w + n * in, in);
  });
}

void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t in,
                     int64_t out) {
  if (dx != nullptr) {
    parallel_for(N, [&](int64_t t) {
      const float* g = dy + t * out;
      float* d = dx + t * in;
      for (int64_t n = 0; n < out; ++n) axpy(d, g[n], w + n * in, in);
    });
  }
  if (dw != nullptr) {
    parallel_for(out, [&](int64_t n) {
      float* d = dw + n * in;
      for (int64_t t = 0; t < N; ++t) axpy(d, dy[t * out + n], x + t * in, in);
    });
  }
}

}  // namespace dsv3
