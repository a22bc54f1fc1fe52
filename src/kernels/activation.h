// Element-wise activations and row softmax, with the backward of each for training.
#pragma once

#include <cmath>
#include <cstdint>

namespace dsv3::kernels {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// out[i] = silu(gate[i]) * up[i] for i < n. out may alias gate or up. Both swiglu functions split
// the elements across threads; the AVX2 path differs from the scalar formulas only by its exp
// (exp_rows.h: within 2 ulp).
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
// Backward of swiglu_forward: with σ = sigmoid(g), silu'(g) = σ·(1 + g·(1 − σ)),
//   dgate[i] += dout[i]·up[i]·silu'(gate[i])      dup[i] += dout[i]·silu(gate[i]).
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// In-place numerically stable softmax of one row of n values (max-subtracted, f32 exp,
// sum in double). Entries equal to -inf get probability 0.
void softmax_row(float* x, int64_t n);

// Backward of a sigmoid given its output s: dx[i] += dy[i]·s[i]·(1 − s[i]).
void sigmoid_backward(float* dx, const float* dy, const float* s, int64_t n);
// Backward of softmax_row given its output p: dx[i] += p[i]·(dy[i] − Σ_j p[j]·dy[j]).
void softmax_row_backward(float* dx, const float* dy, const float* p, int64_t n);

}  // namespace dsv3::kernels
