// Fine-grained FP8 (E4M3) quantization of the DeepSeek-V3 training recipe
// (spec training §3.1-3.3, model §5.3-5.4). One rule, three tilings.
//
// The rule, for every group G of elements:
//   amax = max(max_{x in G} |x|, 1e-4)        f32; the clamp makes all-zero groups safe
//   s    = amax / 448                          f32                         (ScaleFmt::kF32)
//        = 2^ceil(log2(amax / 448))            exponent rounded UP         (ScaleFmt::kUe8m0)
//   q    = E4M3_RNE_sat(x * (1/s))             inv = 1.0f / s rounded once, then one f32 multiply
//   x^   = q * s                               (dequantize)
//
// x * (1/s), not x / s: DeepGEMM's reference cast (per_token_cast_to_fp8, x * (1.0 / sf)) is the
// spec the GEMM tests come from, and one reciprocal per group plus a multiply per element is what
// a vector kernel does. V3's act_quant divides instead; the two differ in the last FP8 bit when
// x/s lands within an f32 rounding of an E4M3 tie. With kUe8m0 scales they agree exactly (1/s is a
// power of two). The cast saturates to +-448 (the "satfinite" cast), so x * (1/s) slightly above
// 448 through f32 rounding never becomes NaN; a NaN input stays NaN.
//
// Tilings (codes are row-major, one byte each; scales are f32, row-major):
//   1x128   : one row x 128 consecutive columns.   scales (rows, ceil(cols/128)).
//             Activations and activation gradients along the GEMM inner dimension.
//   128x128 : 128 rows x 128 columns.              scales (ceil(rows/128), ceil(cols/128)).
//             Weights [N out, K in]. A partial edge block is zero-padded, which cannot change amax.
//   128x1   : 128 rows x one column.               scales (ceil(rows/128), cols).
//             Wgrad operands: the GEMM reduces over rows (tokens).
// An edge tile (a dimension not a multiple of 128) is simply the shorter group.
//
// Pointers are not owned; outputs never alias inputs. All functions are deterministic and split
// their work over rows or columns (parallel_for), so results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

constexpr int64_t kFp8Group = 128;    // tile edge: 1x128, 128x128, 128x1; also the promotion interval
constexpr float kFp8AmaxFloor = 1e-4f;

inline constexpr int64_t fp8_groups(int64_t n) { return (n + kFp8Group - 1) / kFp8Group; }

enum class ScaleFmt : uint8_t {
  kF32,    // s = amax / 448
  kUe8m0,  // s = 2^ceil(log2(amax / 448)): a power of two, as V3.1's "ue8m0" and DeepGEMM's ceil_to_ue8m0
};

// The scale of a group whose largest magnitude is `amax` (clamp included).
float fp8_scale(float amax, ScaleFmt fmt);
// One element: E4M3_RNE_sat(x * inv_scale), inv_scale = 1.0f / s.
uint8_t fp8_quantize_value(float x, float inv_scale);
// The 256 values of e4m3_to_f32 (code -> f32), for table-driven dequantization.
const float* e4m3_value_table();

// ---- 1x128 tiles along columns: x (rows, cols) with row stride ldx -> q (rows, cols) contiguous,
//      s (rows, fp8_groups(cols)).
void quantize_1x128(uint8_t* q, float* s, const float* x, int64_t rows, int64_t cols, int64_t ldx,
                    ScaleFmt fmt);
void dequantize_1x128(float* x, const uint8_t* q, const float* s, int64_t rows, int64_t cols);

// ---- 128x128 blocks: w (rows, cols) contiguous -> q (rows, cols), s (fp8_groups(rows), fp8_groups(cols)).
void quantize_128x128(uint8_t* q, float* s, const float* w, int64_t rows, int64_t cols, ScaleFmt fmt);
void dequantize_128x128(float* w, const uint8_t* q, const float* s, int64_t rows, int64_t cols);

// ---- 128x1 tiles along rows: x (rows, cols) with row stride ldx -> q (rows, cols) contiguous,
//      s (fp8_groups(rows), cols).
void quantize_128x1(uint8_t* q, float* s, const float* x, int64_t rows, int64_t cols, int64_t ldx,
                    ScaleFmt fmt);
void dequantize_128x1(float* x, const uint8_t* q, const float* s, int64_t rows, int64_t cols);
// The same 128x1 groups (bitwise the same codes and scales) stored transposed: qt (cols, rows),
// st (cols, fp8_groups(rows)). This is the layout of dy^T, the left operand of Wgrad.
void quantize_128x1_transposed(uint8_t* qt, float* st, const float* x, int64_t rows, int64_t cols,
                               int64_t ldx, ScaleFmt fmt);

// The Wgrad re-tiling of a tensor cached in FP8 1x128 tiles: dequantize (q * s in f32), regroup
// 128x1, requantize. An extra rounding inherent to the recipe (V3 §3.5.2): exact only where the
// new scale is the old one times a power of two and no value falls into the subnormal range.
// q_in/s_in as quantize_1x128 writes them; q_out/s_out as quantize_128x1 writes them.
void requantize_1x128_to_128x1(uint8_t* q_out, float* s_out, const uint8_t* q_in, const float* s_in,
                               int64_t rows, int64_t cols, ScaleFmt fmt);

// Codes (rows, cols) -> (cols, rows). Exact: how Fprop reads the weight blocks transposed
// without requantizing (the scale grid is read transposed by index arithmetic instead).
void transpose_codes(uint8_t* out, const uint8_t* in, int64_t rows, int64_t cols);

// ---- E5M6: the custom 12-bit format V3 uses for the cached input of the Linear after attention
// (V3 §3.3.3). Layout S EEEEE MMMMMM in the low 12 bits of a uint16. Its exact rules are not
// published; we assume (spec training §3.1) IEEE-like bias 15 with the all-ones exponent reserved,
// so the largest finite value is (2 - 2^-6) * 2^15 = 65024, subnormal step 2^-20, RNE, saturating to
// +-65024; NaN = S.11111.111111. Scales are always powers of two (V3: "power-of-2 scaling factors").
// Its 6 mantissa bits keep the Wgrad re-tiling (dequantize, then quantize_128x1 to E4M3) close to a
// single E4M3 rounding of the original value.
constexpr float kE5M6Max = 65024.0f;
uint16_t f32_to_e5m6(float x);
float e5m6_to_f32(uint16_t bits);
// 1x128 tiles, power-of-two scales s = 2^ceil(log2(amax / 65024)), amax clamped at 1e-4 as for E4M3.
void quantize_e5m6_1x128(uint16_t* q, float* s, const float* x, int64_t rows, int64_t cols, int64_t ldx);
void dequantize_e5m6_1x128(float* x, const uint16_t* q, const float* s, int64_t rows, int64_t cols);

}  // namespace dsv3::kernels
