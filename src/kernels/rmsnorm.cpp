#include "kernels/rmsnorm.h"

#include <cmath>

#include "core/parallel_for.h"

namespace dsv3::kernels {

void rmsnorm_forward(float* out, int64_t ldo, float* rstd, const float* x, int64_t ldx, const float* w,
                     int64_t T, int64_t C, float eps) {
  parallel_for(T, [&](int64_t t) {
    const float* xr = x + t * ldx;
    float* o = out + t * ldo;
    // Sum of squares in double: the normalizer is then exact to f32 rounding for any C.
    double ss = 0.0;
    for (int64_t c = 0; c < C; ++c) ss += double(xr[c]) * double(xr[c]);
    float r = float(1.0 / std::sqrt(ss / double(C) + double(eps)));
    if (rstd != nullptr) rstd[t] = r;
    for (int64_t c = 0; c < C; ++c) o[c] = w[c] * (xr[c] * r);
  });
}

void rmsnorm_backward(float* dx, int64_t lddx, float* dw, const float* dout, int64_t lddo, const float* x,
                      int64_t ldx, const float* w, const float* rstd, int64_t T, int64_t C) {
  parallel_for(T, [&](int64_t t) {
    const float* xr = x + t * ldx;
    const float* dy = dout + t * lddo;
    float* d = dx + t * lddx;
    const double r = rstd[t];
    double dot = 0.0;  // Σ_j w_j·dy_j·x_j
    for (int64_t c = 0; c < C; ++c) dot += double(w[c]) * double(dy[c]) * double(xr[c]);
    const double k = r * r * r * dot / double(C);
    for (int64_t c = 0; c < C; ++c) d[c] += float(r * double(w[c]) * double(dy[c]) - k * double(xr[c]));
  });
  if (dw == nullptr) return;
  parallel_chunks(C, [&](int64_t c0, int64_t c1) {
    for (int64_t t = 0; t < T; ++t) {
      const float* xr = x + t * ldx;
      const float* dy = dout + t * lddo;
      const float r = rstd[t];
      for (int64_t c = c0; c < c1; ++c) dw[c] += dy[c] * (xr[c] * r);
    }
  });
}

}  // namespace dsv3::kernels
