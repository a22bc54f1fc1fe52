// Spot checks of the scalar number formats at the reference points the spec lists
// (deepseek-v3-model.md §5.4). The exhaustive sweeps live in numeric_test.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "core/numeric.h"

namespace dsv3 {

TEST(NumericSmoke, E4M3ReferencePoints) {
  EXPECT_EQ(f32_to_e4m3(1.0f), 0x38);
  EXPECT_EQ(f32_to_e4m3(2.0f), 0x40);
  EXPECT_EQ(f32_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(464.0f), 0x7E);     // tie to even -> 448
  EXPECT_EQ(f32_to_e4m3(1000.0f), 0x7E);    // saturates
  EXPECT_EQ(f32_to_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -10)), 0x00);         // tie to even -> 0
  EXPECT_EQ(f32_to_e4m3(1.5f * std::ldexp(1.0f, -10)), 0x01);  // -> min subnormal
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7F)));
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
}

TEST(NumericSmoke, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
}

TEST(NumericSmoke, F16RoundTrip) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // rounds up to inf
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
}

}  // namespace dsv3
