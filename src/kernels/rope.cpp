#include "kernels/rope.h"

#include "core/parallel_for.h"

namespace dsv3::kernels {
namespace {

void rotate(float* x, int64_t T, int64_t n_vec, int64_t tok_stride, int64_t vec_stride, int64_t d_r,
            const float* cos, const float* sin, float sign) {
  const int64_t half = d_r / 2;
  parallel_for(T, [&](int64_t t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int64_t v = 0; v < n_vec; ++v) {
      float* p = x + t * tok_stride + v * vec_stride;
      for (int64_t i = 0; i < half; ++i) {
        float a = p[2 * i], b = p[2 * i + 1], si = sign * s[i];
        p[2 * i] = a * c[i] - b * si;
        p[2 * i + 1] = a * si + b * c[i];
      }
    }
  });
}

}  // namespace

void rope_forward(float* x, int64_t T, int64_t n_vec, int64_t tok_stride, int64_t vec_stride, int64_t d_r,
                  const float* cos, const float* sin) {
  rotate(x, T, n_vec, tok_stride, vec_stride, d_r, cos, sin, 1.0f);
}

void rope_backward(float* dx, int64_t T, int64_t n_vec, int64_t tok_stride, int64_t vec_stride, int64_t d_r,
                   const float* cos, const float* sin) {
  rotate(dx, T, n_vec, tok_stride, vec_stride, d_r, cos, sin, -1.0f);
}

}  // namespace dsv3::kernels
