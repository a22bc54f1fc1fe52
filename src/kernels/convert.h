// Array conversions between f32 and the storage formats of checkpoints and activations.
// Each result is bit-identical to the scalar specification in core/numeric.h applied element by
// element (NaN inputs give NaN outputs; the NaN payload may differ). Any n >= 0, any alignment;
// `out` and `in` must not overlap. Single-threaded: callers split large arrays themselves.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

void convert_f32_to_bf16(uint16_t* out, const float* in, int64_t n);  // round to nearest even
void convert_bf16_to_f32(float* out, const uint16_t* in, int64_t n);
void convert_f16_to_f32(float* out, const uint16_t* in, int64_t n);
void convert_e4m3_to_f32(float* out, const uint8_t* in, int64_t n);
void convert_f32_to_e4m3(uint8_t* out, const float* in, int64_t n);  // saturating, RNE
// out[i] = round_to_bf16(in[i]): f32 values rounded to BF16 precision, kept as f32 (the BF16
// recipe's rounding of Linear operands). Here out may equal in.
void round_f32_to_bf16(float* out, const float* in, int64_t n);

// The scale searches of the FP8 quantizers: max |x_i| over n values (0 for n = 0), and
// amax_i = max(amax_i, |x_i|) element by element. NaN inputs are skipped (a NaN must not poison
// a block's scale; it still quantizes to a NaN code). Max is exact, so any order of evaluation
// gives the same bits.
float abs_max(const float* x, int64_t n);
void abs_max_into(float* amax, const float* x, int64_t n);

// One step of either: the scalar meaning (a NaN x compares false and is skipped).
inline float abs_max_step(float amax, float x) {
  const float a = x < 0.0f ? -x : x;
  return a > amax ? a : amax;
}

}  // namespace dsv3::kernels
