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

}  // namespace dsv3::kernels
