// RMSNorm (DeepSeek-V3 §2.2): y = w ⊙ x / sqrt(mean(x²) + eps), statistics in f32/f64, and its
// backward for training.
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

// Backward of rmsnorm_forward, same dims. With y = w ⊙ x·r, r = rstd (saved by the forward):
//   dx_c += r·w_c·dy_c − (r³/C)·x_c·Σ_j w_j·dy_j·x_j        dw_c += Σ_t dy_tc·x_tc·r_t
// dx (T, C) row stride lddx, dout row stride lddo. dx and dw ACCUMULATE; dw may be null (a norm
// without weight gradient). dw's sum over tokens runs in token order for each column (threads
// split the columns), so results do not depend on the thread count.
void rmsnorm_backward(float* dx, int64_t lddx, float* dw, const float* dout, int64_t lddo, const float* x,
                      int64_t ldx, const float* w, const float* rstd, int64_t T, int64_t C);
inline void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                             const float* rstd, int64_t T, int64_t C) {
  rmsnorm_backward(dx, C, dw, dout, C, x, C, w, rstd, T, C);
}

}  // namespace dsv3::kernels
