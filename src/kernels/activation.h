// Element-wise activations and row softmax.
#pragma once

#include <cmath>
#include <cstdint>

namespace dsv3::kernels {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// out[i] = silu(gate[i]) * up[i] for i < n. out may alias gate or up.
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);

// In-place numerically stable softmax of one row of n values (max-subtracted, f32 exp,
// sum in double). Entries equal to -inf get probability 0.
void softmax_row(float* x, int64_t n);

}  // namespace dsv3::kernels
