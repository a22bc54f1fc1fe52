#include "kernels/rmsnorm.h"

#include <cmath>

#include "core/parallel_for.h"

namespace dsv3::kernels {
namespace {

// Σ_c f(c) in double over 4 interleaved partial sums (lanes c mod 4), then ((s0 + s1) + (s2 + s3)):
// a fixed order, so the result does not depend on threads, and four add chains instead of one
// (a single chain of dependent double adds was most of the norms' time).
template <typename F>
double sum4(int64_t C, F&& f) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t c = 0;
  for (; c + 4 <= C; c += 4) {
    s0 += f(c);
    s1 += f(c + 1);
    s2 += f(c + 2);
    s3 += f(c + 3);
  }
  for (; c < C; ++c) s0 += f(c);
  return (s0 + s1) + (s2 + s3);
}

}  // namespace

void rmsnorm_forward(float* out, int64_t ldo, float* rstd, const float* x, int64_t ldx, const float* w,
                     int64_t T, int64_t C, float eps) {
  parallel_for(T, [&](int64_t t) {
    const float* xr = x + t * ldx;
    float* o = out + t * ldo;
    // Sum of squares in double: the normalizer is then exact to f32 rounding for any C.
    const double ss = sum4(C, [&](int64_t c) { return double(xr[c]) * double(xr[c]); });
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
    const double dot = sum4(C, [&](int64_t c) { return double(w[c]) * double(dy[c]) * double(xr[c]); });  // Σ w·dy·x
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
