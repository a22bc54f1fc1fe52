// Rotary position embedding on interleaved pairs, exactly as DeepSeek's official model.py
// (complex multiply of (x[2i], x[2i+1]) by e^{i·φ}, φ = pos · inv_freq[i]); see spec §2.4 and
// its pairing convention: the released weights expect interleaved pairs, not rotate_half.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

// Rotates, in place, n_vec vectors of d_r rope dims per token for T tokens.
// x: element (t, v, j) at x[t * tok_stride + v * vec_stride + j], j < d_r.
// cos, sin: (T, d_r / 2) tables for each token's position (built by model/rope_table).
void rope_forward(float* x, int64_t T, int64_t n_vec, int64_t tok_stride, int64_t vec_stride, int64_t d_r,
                  const float* cos, const float* sin);
// The adjoint (inverse rotation): dx = Rᵀ dy, in place.
void rope_backward(float* dx, int64_t T, int64_t n_vec, int64_t tok_stride, int64_t vec_stride, int64_t d_r,
                   const float* cos, const float* sin);

}  // namespace dsv3::kernels
