// The linear layer of training, y = x·Wᵀ, with W stored as checkpoints store it (out, in), and its
// backward. Every projection of the training model goes through these two functions, so the
// precision recipe (f32 today) and the GEMM behind them change in one place.
#pragma once

#include <cstdint>

namespace dsv3 {

// y (N, out) = x (N, in) · Wᵀ, W (out, in). Overwrites y; y must not alias x.
void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t in, int64_t out);

// dx (N, in) += dy · W and dW (out, in) += dyᵀ · x. dx or dw may be null (not needed).
// The sum over tokens of dW runs in token order for every element (threads split W's rows).
void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t in,
                     int64_t out);

}  // namespace dsv3
