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
// Caching (training spec §3.4, §5.4): x is saved for backward as a LinearInput, a view into the
// activation arena whose format the arena chose from the precision (cache_format()):
//   kF32   x itself in f32 (no copy; linear_forward only checks data == x).
//   kBf16  x rounded to BF16, 2 bytes per element: exactly the BF16 GEMM operand.
//   kE4m3  the 1x128 E4M3 tiles and f32 scales forward quantized for Fprop, 1 + 4/128 bytes per
//          element: Fprop reads them, backward requantizes them 128x1 for Wgrad.
//   kE5m6  the input of the Linear after attention under fp8 (V3 §3.3.3): E5M6 codes with
//          power-of-two 1x128 scales, 2 + 4/128 bytes per element; Fprop still quantizes x to
//          E4M3 1x128 from f32, Wgrad quantizes the decoded E5M6 values 128x1 (one E4M3 rounding).
// A kF32 LinearInput under kBf16/kFp8 (recompute, or keep_f32 below) derives the same operand in
// backward from f32 (rounding, quantizing 1x128 then requantizing, or the E5M6 round trip): the
// same bits as the low-precision cache, with the memory of f32.
// Scratch for the quantized or rounded operands lives in a per-thread workspace that only grows
// (linear_workspace_bytes()).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace dsv3 {

enum class Precision : uint8_t { kF32, kBf16, kFp8 };

enum class CacheFormat : uint8_t { kF32, kBf16, kE4m3, kE5m6 };

// A linear layer's input x (rows, cols) as saved for backward. Non-owning: data and scales point
// into the activation arena (or, for kF32, at x itself).
struct LinearInput {
  CacheFormat format = CacheFormat::kF32;
  bool attn_out = false;    // the input of o_proj: E5M6 rather than E4M3 under kFp8
  void* data = nullptr;     // (rows, cols): float | BF16 bits uint16_t | E4M3 uint8_t | E5M6 uint16_t
  float* scales = nullptr;  // (rows, ceil(cols/128)) for kE4m3 and kE5m6
};

// The format the recipe caches an input in: kF32 -> kF32, kBf16 -> kBf16, kFp8 -> kE4m3 (kE5m6
// for the attention output).
CacheFormat cache_format(Precision p, bool attn_out);
// Bytes of the codes and of the scales of a (rows, cols) input cached in `f`.
int64_t cache_data_bytes(CacheFormat f, int64_t rows, int64_t cols);
int64_t cache_scale_bytes(CacheFormat f, int64_t rows, int64_t cols);
// A kF32 LinearInput viewing x.
inline LinearInput f32_input(const float* x, bool attn_out = false) {
  return {CacheFormat::kF32, attn_out, const_cast<float*>(x), nullptr};
}

// A tensor x (rows, cols) into `saved` in its format (kF32: nothing, `saved` views x), and decoded
// back into x: what linear_forward / linear_backward do with a linear input, and how other
// activations are cached like them (the MoE SwiGLU inputs, V3 §3.3.3). E4M3 and E5M6 use 1x128
// tiles (E4M3 with the recipe's scales); BF16 rounds to nearest even.
void cache_store(const LinearInput& saved, const float* x, int64_t rows, int64_t cols, Precision precision);
void cache_load(float* x, const LinearInput& saved, int64_t rows, int64_t cols);

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

// The same two steps with x saved as a LinearInput. Forward writes x into `saved` in its format
// (writing the same x again, for a second layer reading it, gives the same bits); backward reads
// only `saved`. A kF32 `saved` must view x itself.
void linear_forward(float* y, const LinearInput& saved, const float* x, const float* w, int64_t N, int64_t in,
                    int64_t out, Precision precision);
void linear_backward(float* dx, float* dw, const float* dy, const LinearInput& saved, const float* w, int64_t N,
                     int64_t in, int64_t out, Precision precision);

// Bytes held by the calling thread's low-precision workspace (0 until a kBf16/kFp8 call).
int64_t linear_workspace_bytes();

}  // namespace dsv3
