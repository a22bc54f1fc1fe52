// Exhaustive checks of the scalar number formats (core/numeric.h) against an independent oracle
// written here in double precision:
//   decode: the value of every code from its sign / exponent / mantissa fields;
//   encode: nearest representable value found by binary search over the sorted table of all
//           non-negative codes, the midpoint compared exactly in double (grid values have few
//           bits), ties to the even code; saturation (FP8) or overflow to inf (F16, BF16) by
//           putting inf at the top of the table.
// Every BF16/F16 code (65536) and every E4M3/E5M2 code (256) is decoded and round-tripped;
// random f32 bit patterns and random in-range values are encoded and compared with the oracle.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/numeric.h"
#include "core/rng.h"

namespace dsv3 {
namespace {

struct Format {
  int exp_bits, man_bits, bias;
  uint32_t max_code;   // largest non-negative code in the search table (inf or max finite)
  bool top_is_inf;     // max_code stands for overflow to inf (F16, BF16) rather than saturation
  uint32_t nan_code;   // the NaN the encoder produces (without sign)
  bool ieee_specials;  // all-ones exponent = inf / NaN (else only S.1111.111 is NaN: E4M3 "fn")
};

constexpr Format kE4M3{4, 3, 7, 0x7E, false, 0x7F, false};
constexpr Format kE5M2{5, 2, 15, 0x7B, false, 0x7F, true};
constexpr Format kF16{5, 10, 15, 0x7C00, true, 0x7E00, true};
constexpr Format kBF16{8, 7, 127, 0x7F80, true, 0x7FC0, true};

// Value of a non-negative finite code from its fields (inf for the top code of F16/BF16).
double oracle_value(const Format& f, uint32_t code) {
  const uint32_t e = code >> f.man_bits, m = code & ((1u << f.man_bits) - 1);
  if (f.top_is_inf && code == f.max_code) return std::numeric_limits<double>::infinity();
  if (e == 0) return std::ldexp(double(m), 1 - f.bias - f.man_bits);
  return std::ldexp(1.0 + double(m) / double(1u << f.man_bits), int(e) - f.bias);
}

uint32_t sign_bit(const Format& f) { return 1u << (f.exp_bits + f.man_bits); }

class Oracle {
 public:
  explicit Oracle(const Format& f) : f_(f) {
    for (uint32_t c = 0; c <= f.max_code; ++c) values_.push_back(oracle_value(f, c));
  }
  uint32_t encode(float x) const {
    const uint32_t sign = std::signbit(x) ? sign_bit(f_) : 0;
    if (std::isnan(x)) return sign | f_.nan_code;
    double a = std::fabs(double(x));
    if (!f_.top_is_inf) a = std::min(a, values_.back());  // saturate
    if (a >= values_.back()) return sign | f_.max_code;
    const size_t hi = size_t(std::lower_bound(values_.begin(), values_.end(), a) - values_.begin());
    if (values_[hi] == a) return sign | uint32_t(hi);
    const size_t lo = hi - 1;
    const double mid = std::isinf(values_[hi])
                           ? values_[lo] + (values_[lo] - values_[lo - 1]) / 2  // the step above max
                           : (values_[lo] + values_[hi]) / 2;
    if (a < mid) return sign | uint32_t(lo);
    if (a > mid) return sign | uint32_t(hi);
    return sign | uint32_t(lo % 2 == 0 ? lo : hi);
  }

 private:
  Format f_;
  std::vector<double> values_;
};

// Random f32 inputs: raw bit patterns (all classes) and values spread over the format's range.
std::vector<float> random_inputs(const Format& f, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> xs;
  for (int i = 0; i < 200000; ++i) xs.push_back(std::bit_cast<float>(uint32_t(rng.next_bits())));
  const int lo = 1 - f.bias - f.man_bits - 2, hi = std::min(127, (1 << f.exp_bits) - f.bias + 1);
  for (int i = 0; i < 400000; ++i) {
    const int e = lo + int(rng.next_bits() % uint64_t(hi - lo + 1));
    const float v = std::ldexp(1.0f + rng.next_uniform(), e);
    xs.push_back(rng.next_bits() & 1 ? -v : v);
  }
  return xs;
}

template <typename Decode>
void expect_decodes_all_codes(const Format& f, int n_codes, Decode decode) {
  for (int c = 0; c < n_codes; ++c) {
    const uint32_t mag = uint32_t(c) & (sign_bit(f) - 1);
    const bool neg = (uint32_t(c) & sign_bit(f)) != 0;
    const float got = decode(uint32_t(c));
    const uint32_t exp_all = ((1u << f.exp_bits) - 1) << f.man_bits;
    if (f.ieee_specials && (mag & exp_all) == exp_all) {  // inf / NaN codes
      if ((mag & ((1u << f.man_bits) - 1)) == 0) {
        EXPECT_TRUE(std::isinf(got) && std::signbit(got) == neg) << "code " << c;
      } else {
        EXPECT_TRUE(std::isnan(got)) << "code " << c;
      }
      continue;
    }
    if (!f.ieee_specials && mag == sign_bit(f) - 1) {
      EXPECT_TRUE(std::isnan(got)) << "code " << c;
      continue;
    }
    const double want = oracle_value(Format{f.exp_bits, f.man_bits, f.bias, 0xFFFFFFFF, false, 0, false}, mag);
    EXPECT_EQ(double(got), neg ? -want : want) << "code " << c;
    EXPECT_EQ(std::signbit(got), neg) << "code " << c;
  }
}

TEST(Numeric, E4M3DecodesEveryCode) {
  expect_decodes_all_codes(kE4M3, 256, [](uint32_t c) { return e4m3_to_f32(uint8_t(c)); });
}
TEST(Numeric, E5M2DecodesEveryCode) {
  expect_decodes_all_codes(kE5M2, 256, [](uint32_t c) { return e5m2_to_f32(uint8_t(c)); });
}
TEST(Numeric, F16DecodesEveryCode) {
  expect_decodes_all_codes(kF16, 65536, [](uint32_t c) { return f16_to_f32(uint16_t(c)); });
}
TEST(Numeric, Bf16DecodesEveryCode) {
  expect_decodes_all_codes(kBF16, 65536, [](uint32_t c) { return bf16_to_f32(uint16_t(c)); });
}

TEST(Numeric, FiniteCodesRoundTrip) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) != 0x7F) {
      EXPECT_EQ(f32_to_e4m3(e4m3_to_f32(uint8_t(c))), c) << "e4m3 " << c;
    }
    if ((c & 0x7C) != 0x7C) {
      EXPECT_EQ(f32_to_e5m2(e5m2_to_f32(uint8_t(c))), c) << "e5m2 " << c;
    }
  }
  for (int c = 0; c < 65536; ++c) {
    if ((c & 0x7C00) != 0x7C00 || (c & 0x3FF) == 0) {
      EXPECT_EQ(f32_to_f16(f16_to_f32(uint16_t(c))), c) << "f16 " << c;
    }
    if ((c & 0x7F80) != 0x7F80 || (c & 0x7F) == 0) {
      EXPECT_EQ(f32_to_bf16(bf16_to_f32(uint16_t(c))), c) << "bf16 " << c;
    }
  }
  EXPECT_TRUE(std::isnan(e4m3_to_f32(f32_to_e4m3(std::nanf("")))));
  EXPECT_TRUE(std::isnan(e5m2_to_f32(f32_to_e5m2(std::nanf("")))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(-std::nanf("")))));
  EXPECT_TRUE(std::signbit(bf16_to_f32(f32_to_bf16(-std::nanf("")))));
}

template <typename Encode>
void expect_encodes_like_oracle(const Format& f, uint64_t seed, Encode encode) {
  const Oracle oracle(f);
  int failures = 0;
  for (float x : random_inputs(f, seed)) {
    const uint32_t got = encode(x), want = oracle.encode(x);
    if (std::isnan(x)) {  // any NaN code with the sign kept (BF16 keeps the payload, quieted)
      const uint32_t mag = got & (sign_bit(f) - 1), exp_all = ((1u << f.exp_bits) - 1) << f.man_bits;
      const bool is_nan = f.ieee_specials ? (mag & exp_all) == exp_all && (mag & ((1u << f.man_bits) - 1)) != 0
                                          : mag == sign_bit(f) - 1;
      if ((!is_nan || (got & sign_bit(f)) != (want & sign_bit(f))) && ++failures <= 10) {
        ADD_FAILURE() << "NaN with bits " << std::bit_cast<uint32_t>(x) << " encoded as " << got;
      }
      continue;
    }
    if (got != want && ++failures <= 10) ADD_FAILURE() << "x=" << x << " (bits " << std::bit_cast<uint32_t>(x)
                                                       << ") got " << got << " want " << want;
  }
  EXPECT_EQ(failures, 0);
}

TEST(Numeric, E4M3EncodesLikeOracle) {
  expect_encodes_like_oracle(kE4M3, 1, [](float x) { return uint32_t(f32_to_e4m3(x)); });
}
TEST(Numeric, E5M2EncodesLikeOracle) {
  expect_encodes_like_oracle(kE5M2, 2, [](float x) { return uint32_t(f32_to_e5m2(x)); });
}
TEST(Numeric, F16EncodesLikeOracle) {
  expect_encodes_like_oracle(kF16, 3, [](float x) { return uint32_t(f32_to_f16(x)); });
}
TEST(Numeric, Bf16EncodesLikeOracle) {
  expect_encodes_like_oracle(kBF16, 4, [](float x) { return uint32_t(f32_to_bf16(x)); });
}

// Every midpoint between neighbouring codes is a tie and must go to the even code.
TEST(Numeric, TiesGoToEven) {
  for (uint32_t c = 0; c + 1 <= 0x7E; ++c) {
    const float mid = float((double(e4m3_to_f32(uint8_t(c))) + e4m3_to_f32(uint8_t(c + 1))) / 2);
    EXPECT_EQ(f32_to_e4m3(mid), c % 2 == 0 ? c : c + 1) << "e4m3 " << c;
    EXPECT_EQ(f32_to_e4m3(-mid), 0x80 | (c % 2 == 0 ? c : c + 1)) << "e4m3 " << c;
  }
  for (uint32_t c = 0; c + 1 <= 0x7B; ++c) {
    const float mid = float((double(e5m2_to_f32(uint8_t(c))) + e5m2_to_f32(uint8_t(c + 1))) / 2);
    EXPECT_EQ(f32_to_e5m2(mid), c % 2 == 0 ? c : c + 1) << "e5m2 " << c;
  }
  for (uint32_t c = 0; c + 1 <= 0x7BFF; ++c) {
    const float mid = float((double(f16_to_f32(uint16_t(c))) + f16_to_f32(uint16_t(c + 1))) / 2);
    ASSERT_EQ(f32_to_f16(mid), c % 2 == 0 ? c : c + 1) << "f16 " << c;
  }
  for (uint32_t c = 0; c + 1 <= 0x7F7F; ++c) {
    const float lo = bf16_to_f32(uint16_t(c));
    const float mid = std::bit_cast<float>(std::bit_cast<uint32_t>(lo) + 0x8000u);  // exact midpoint
    ASSERT_EQ(f32_to_bf16(mid), c % 2 == 0 ? c : c + 1) << "bf16 " << c;
  }
}

// deepseek-v3-model.md §5.4: the quantizer clamps to +-448 before rounding, so nothing becomes NaN.
TEST(Numeric, E4M3Saturates) {
  for (float x : {448.0f, 450.0f, 460.0f, 464.0f, 464.5f, 470.0f, 480.0f, 1e6f, 3e38f,
                  std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(f32_to_e4m3(x), 0x7E) << x;
    EXPECT_EQ(f32_to_e4m3(-x), 0xFE) << x;
  }
  EXPECT_EQ(f32_to_e4m3(416.0f + 15.9f), 0x7D);  // just below the 416/448 midpoint
  EXPECT_EQ(f32_to_e5m2(1e9f), 0x7B);
  EXPECT_EQ(f32_to_e5m2(-std::numeric_limits<float>::infinity()), 0xFB);
  EXPECT_EQ(f32_to_f16(1e9f), 0x7C00);  // IEEE: overflow to inf
  EXPECT_EQ(f32_to_f16(65519.99f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
}

TEST(Numeric, E4M3Subnormals) {
  const float u = std::ldexp(1.0f, -9);  // smallest subnormal
  EXPECT_EQ(f32_to_e4m3(0.5f * u), 0x00);    // tie -> 0 (even)
  EXPECT_EQ(f32_to_e4m3(0.51f * u), 0x01);
  EXPECT_EQ(f32_to_e4m3(1.5f * u), 0x02);    // tie between 1 and 2 -> 2
  EXPECT_EQ(f32_to_e4m3(2.5f * u), 0x02);    // tie between 2 and 3 -> 2
  EXPECT_EQ(f32_to_e4m3(7.5f * u), 0x08);    // tie between the largest subnormal and 2^-6
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -6)), 0x08);
  EXPECT_EQ(f32_to_e4m3(1e-30f), 0x00);
  EXPECT_EQ(f32_to_e4m3(-1e-30f), 0x80);
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
  for (int m = 0; m < 8; ++m) EXPECT_EQ(e4m3_to_f32(uint8_t(m)), float(m) * u);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // f16: half the smallest subnormal ties to 0
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);
}

}  // namespace
}  // namespace dsv3
