// RMSNorm (DeepSeek-V3 §2.2): y = w ⊙ x / sqrt(mean(x²) + eps), statistics in f32/f64.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

// out (T, C) row stride ldo; x (T, C) row stride ldx; w (C). rstd (T) is written when non-null
// (saved for backward). out may alias x.
void rmsnorm_forward(float* out, int64_t ldo, float* rstd, const float* x, int64_t ldx, const float* w,
                     int64_t T, int64_t C, float eps);
inline void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t T, int64_t C,
                            float eps) {
  rmsnorm_forward(out, C, rstd, x, C, w, T, C, eps);
}

}  // namespace dsv3::kernels
