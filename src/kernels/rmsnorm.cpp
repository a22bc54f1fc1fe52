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

}  // namespace dsv3::kernels
