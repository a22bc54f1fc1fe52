// Scalar number formats: the specification that every vectorized conversion is tested against.
//
//   BF16    S EEEEEEEE MMMMMMM            top 16 bits of an f32; round-to-nearest-even
//   F16     S EEEEE MMMMMMMMMM            IEEE binary16, bias 15; overflow -> inf
//   E4M3    S EEEE MMM  (bias 7, "fn")    max 448, no inf, NaN = S.1111.111; min subnormal 2^-9
//   E5M2    S EEEEE MM  (bias 15)         max 57344, inf = S.11111.00, NaN = S.11111.xx (xx != 0)
//
// Encoders round to nearest, ties to even. The FP8 encoders SATURATE to the largest finite
// value (the "satfinite" cast the FP8 recipe relies on); NaN stays NaN.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace dsv3 {

inline float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN, sign kept
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

namespace detail {

// A binary minifloat with `man_bits` mantissa bits whose smallest normal exponent is `min_exp`.
// Returns |x| rounded (RNE) onto that grid, without range limits at the top.
inline float round_to_grid(float a, int man_bits, int min_exp) {
  int k = a < std::ldexp(1.0f, min_exp) ? min_exp : std::ilogb(a);
  float step = std::ldexp(1.0f, k - man_bits);
  return std::nearbyint(a / step) * step;  // division by a power of two is exact
}

// Bits (exponent field and mantissa) of a value already on the grid and in range.
inline uint32_t grid_bits(float v, int man_bits, int min_exp) {
  if (v < std::ldexp(1.0f, min_exp)) {  // subnormal (or zero): E = 0
    return uint32_t(v / std::ldexp(1.0f, min_exp - man_bits));
  }
  int k = std::ilogb(v);
  uint32_t e = uint32_t(k - min_exp + 1);
  uint32_t m = uint32_t((v / std::ldexp(1.0f, k) - 1.0f) * float(1 << man_bits));
  return (e << man_bits) | m;
}

inline float decode_minifloat(uint32_t bits, int exp_bits, int man_bits, int bias) {
  uint32_t sign = bits >> (exp_bits + man_bits);
  uint32_t e = (bits >> man_bits) & ((1u << exp_bits) - 1);
  uint32_t m = bits & ((1u << man_bits) - 1);
  float v = e == 0 ? std::ldexp(float(m), 1 - bias - man_bits)
                   : std::ldexp(1.0f + float(m) / float(1 << man_bits), int(e) - bias);
  return sign ? -v : v;
}

}  // namespace detail

inline float f16_to_f32(uint16_t h) {
  if ((h & 0x7C00u) == 0x7C00u) {  // inf / NaN
    uint32_t u = (uint32_t(h & 0x8000u) << 16) | 0x7F800000u | (uint32_t(h & 0x3FFu) << 13);
    return std::bit_cast<float>(u);
  }
  return detail::decode_minifloat(h, 5, 10, 15);
}

inline uint16_t f32_to_f16(float f) {
  uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return sign | 0x7E00;
  float a = std::fabs(f);
  // Overflow -> inf (IEEE): 65520 is the midpoint above the largest finite 65504 and ties to the
  // even neighbour, inf. Tested before rounding, which cannot handle inf itself.
  if (a >= 65520.0f) return sign | 0x7C00;
  float v = detail::round_to_grid(a, 10, -14);
  return uint16_t(sign | detail::grid_bits(v, 10, -14));
}

constexpr float kE4M3Max = 448.0f;
constexpr float kE5M2Max = 57344.0f;

inline float e4m3_to_f32(uint8_t b) {
  if ((b & 0x7F) == 0x7F) return std::numeric_limits<float>::quiet_NaN();
  return detail::decode_minifloat(b, 4, 3, 7);
}

inline uint8_t f32_to_e4m3(float f) {
  uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return sign | 0x7F;
  float a = std::fmin(std::fabs(f), kE4M3Max);  // saturate (also maps inf to 448)
  float v = std::fmin(detail::round_to_grid(a, 3, -6), kE4M3Max);
  return uint8_t(sign | detail::grid_bits(v, 3, -6));
}

inline float e5m2_to_f32(uint8_t b) {
  if ((b & 0x7C) == 0x7C) {
    if (b & 0x03) return std::numeric_limits<float>::quiet_NaN();
    return (b & 0x80) ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }
  return detail::decode_minifloat(b, 5, 2, 15);
}

inline uint8_t f32_to_e5m2(float f) {
  uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return sign | 0x7F;
  float a = std::fmin(std::fabs(f), kE5M2Max);  // saturate
  float v = std::fmin(detail::round_to_grid(a, 2, -14), kE5M2Max);
  return uint8_t(sign | detail::grid_bits(v, 2, -14));
}

}  // namespace dsv3
