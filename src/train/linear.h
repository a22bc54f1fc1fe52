// The linear layer of training, y = x·Wᵀ, with W stored as checkpoints store it (out, in), and its
// backward. Every projection of the training model goes through these two functions, so the
// precision recipe and the GEMM behind them change in one place.
//
// Precision (training spec §3, `dsv3 train --precision`):
//   kF32   f32 GEMMs (kernels/gemm.h): the reference path.
//   kBf16  every GEMM operand (x, W, dy) rounded to BF16, f32 accumulation (kernels/fp8_linear.h).
//   kFp8   Fprop, Dgrad and Wgrad on E4M3 operands with fine-grained scales and promoted
//          accumulation (kernels/fp8_linear.h): x in 1x128 tiles, W in 128x128 blocks, dy in
//          1x128 (Dgrad) and 128x1 (Wgrad) tiles.
// The model passes kBf16/kFp8 only for the projections the recipe runs in low precision (MLA and
// MLP/expert projections); embedding, head, router gate, eh_proj, norms and attention stay f32.
// Outputs y, dx and dW are f32 in every mode (f32 accumulation; dW accumulates into the f32
// gradient buffer that the optimizer's f32 master weights read).
//
// Caching: the model saves x in f32 for backward in every mode. In kFp8, backward re-quantizes
// x with the same 1x128 tiles forward used (quantization is deterministic), so the Wgrad operand
// is bit-identical to an FP8 activation cache; only the memory saving of such a cache is not taken.
// Scratch for the quantized or rounded operands lives in a per-thread workspace that only grows
// (linear_workspace_bytes()).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace dsv3 {

enum class Precision : uint8_t { kF32, kBf16, kFp8 };

// "fp32" | "bf16" | "fp8".
Result<Precision> parse_precision(const std::string& name);
std::string precision_name(Precision p);

// y (N, out) = x (N, in) · Wᵀ, W (out, in). Overwrites y; y must not alias x.
void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t in, int64_t out,
                    Precision precision = Precision::kF32);

// dx (N, in) += dy · W and dW (out, in) += dyᵀ · x. dx or dw may be null (not needed).
// The sum over tokens of dW runs in a fixed order for every element, for any thread count.
void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t in,
                     int64_t out, Precision precision = Precision::kF32);

// Bytes held by the calling thread's low-precision workspace (0 until a kBf16/kFp8 call).
int64_t linear_workspace_bytes();

}  // namespace dsv3
