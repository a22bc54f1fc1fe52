// Portable (scalar, any x86-64) decoding of weight elements, shared by the portable kernels:
// exact and branch-light versions of the numeric.h conversions, plus a dequantizer for a run of
// one WeightMatrix row. Internal to src/kernels.
#pragma once

#include <bit>
#include <cstdint>

#include "kernels/matmul.h"

namespace dsv3::kernels::detail {

// IEEE binary16 -> f32, exact. The 15 magnitude bits shifted into an f32 land the 5-bit exponent
// in the low bits of the 8-bit one (and a subnormal mantissa in the f32 subnormal range); one
// multiplication by 2^112 = 2^(127-15) rebiases both cases exactly. Inf and NaN are set apart.
inline float f16_bits_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t mag = h & 0x7FFFu;
  uint32_t bits = mag >= 0x7C00u ? (0x7F800000u | ((mag & 0x3FFu) << 13))
                                 : std::bit_cast<uint32_t>(std::bit_cast<float>(mag << 13) * 0x1p112f);
  return std::bit_cast<float>(sign | bits);
}

// The 256 E4M3 values (e4m3_to_f32 of each code; NaN for 0x7F and 0xFF).
const float* e4m3_table();

// out[0..n) = W[r, c0 .. c0 + n) in f32 (FP8: code value times its block scale, rounded once).
void dequantize_run(float* out, const WeightMatrix& w, int64_t r, int64_t c0, int64_t n);

}  // namespace dsv3::kernels::detail
