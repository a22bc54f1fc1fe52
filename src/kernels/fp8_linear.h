// One Linear layer y = x · Wᵀ under the DeepSeek-V3 FP8 training recipe (spec training §3.3-3.4),
// and its BF16 twin: the seam through which the training model runs every projection at
// --precision fp8 | bf16.
//
// Shapes (all f32, row-major, contiguous): x (T, K), W (N, K) the f32 master weight, y (T, N),
// dy (T, N), dx (T, K), dw (N, K).
//
// Call sequence per step:
//   linear_prepare_weight(wc, W, N, K, recipe)      after every optimizer update (quantizes or rounds W)
//   linear_forward(y, saved, x, T, wc, recipe)       y = x · Wᵀ (overwrites y); `saved` keeps what
//                                                    backward needs (it does not point into x)
//   linear_backward(dx, dw, dy, T, saved, wc, scratch, recipe)
//                                                    dx = dy · W (overwrites; dx = nullptr skips it)
//                                                    dw += dyᵀ · x (ACCUMULATES, like every grad)
//
// kFp8, per GEMM (spec §3.3):
//   Fprop  x quantized in 1x128 tiles along K (kept as the FP8 activation cache in `saved`),
//          W in 128x128 blocks; FP8 GEMM with promotion every 128 (fp8_gemm.h).
//   Dgrad  dy quantized 1x128 along N; W's same codes and block scales, no requantization.
//   Wgrad  x: the cached 1x128 tiles dequantized and requantized as 128x1 tiles along T (the
//          extra rounding V3 §3.5.2 calls inherent: only the FP8 cache of x exists at backward);
//          dy: quantized 128x1 along T straight from f32, since dy is at hand in full precision.
//   Scales: f32 amax/448, or powers of two (ScaleFmt::kUe8m0).
// kBf16: every operand rounded to BF16 (RNE), f32 accumulation (bf16_gemm): the baseline the
//   report compares FP8 training against.
// bf16_outputs rounds y and dx to BF16, as the GPU kernels write them (dw stays f32 either way).
//
// Memory: LinearWeight, LinearSaved and LinearScratch own std::vectors that only grow, so after
// the first call at the largest T nothing is allocated. Not thread-safe per object; the kernels
// inside use parallel_for and give the same bits for any thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/fp8_gemm.h"
#include "kernels/fp8_quant.h"

namespace dsv3::kernels {

enum class LinearPrecision : uint8_t { kBf16, kFp8 };

struct LinearRecipe {
  LinearPrecision precision = LinearPrecision::kFp8;
  ScaleFmt scale_fmt = ScaleFmt::kF32;  // kFp8 only
  bool bf16_outputs = false;
};

// W prepared for one step. kFp8: q (N, K), qt (K, N), s (ceil(N/128), ceil(K/128)).
// kBf16: w (N, K) and wt (K, N) holding BF16-rounded values as f32.
struct LinearWeight {
  int64_t N = 0, K = 0;
  std::vector<uint8_t> q, qt;
  std::vector<float> s;
  std::vector<float> w, wt;

  Fp8WeightView fp8_view() const { return {q.data(), qt.data(), s.data(), N, K}; }
};

// The input x (T, K) as backward reads it, without owning it (it may live in an activation arena).
//   kFp8:  q (T, K), s (T, ceil(K/128)): the 1x128 tiles forward quantized (the FP8 activation
//          cache); Wgrad requantizes them as 128x1 tiles. Or, with q = nullptr, x (T, K) in f32
//          (e.g. decoded from a wider cache such as E5M6), quantized 128x1 straight away: one
//          E4M3 rounding instead of two.
//   kBf16: x (T, K), values already rounded to BF16.
struct LinearInputView {
  int64_t T = 0, K = 0;
  const uint8_t* q = nullptr;
  const float* s = nullptr;
  const float* x = nullptr;
};

// What forward keeps for backward, owned. kFp8: x's 1x128 tiles q (T, K), s (T, ceil(K/128)).
// kBf16: x rounded to BF16, x16 (T, K).
struct LinearSaved {
  int64_t T = 0, K = 0;
  std::vector<uint8_t> q;
  std::vector<float> s;
  std::vector<float> x16;

  LinearInputView view(LinearPrecision p) const {
    if (p == LinearPrecision::kFp8) return {T, K, q.data(), s.data(), nullptr};
    return {T, K, nullptr, nullptr, x16.data()};
  }
};

// Backward's transient operands.
struct LinearScratch {
  std::vector<uint8_t> dy_q, dyt_q, x_q;
  std::vector<float> dy_s, dyt_s, x_s;
  std::vector<float> dy16, dyt16;
};

void linear_prepare_weight(LinearWeight& wc, const float* W, int64_t N, int64_t K, const LinearRecipe& recipe);
void linear_forward(float* y, LinearSaved& saved, const float* x, int64_t T, const LinearWeight& wc,
                    const LinearRecipe& recipe);
void linear_backward(float* dx, float* dw, const float* dy, int64_t T, const LinearSaved& saved,
                     const LinearWeight& wc, LinearScratch& scratch, const LinearRecipe& recipe);

// The same two steps on an input already in its low-precision form (the caller owns it):
// forward reads x.q/x.s (kFp8, which must be the 1x128 tiles) or x.x (kBf16); backward as above.
void linear_forward(float* y, const LinearInputView& x, const LinearWeight& wc, const LinearRecipe& recipe);
void linear_backward(float* dx, float* dw, const float* dy, const LinearInputView& x, const LinearWeight& wc,
                     LinearScratch& scratch, const LinearRecipe& recipe);

}  // namespace dsv3::kernels
