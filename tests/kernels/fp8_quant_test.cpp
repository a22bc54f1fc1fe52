// FP8 quantizers: a worked bitwise table, edge tiles against the rule written out independently
// (on every kernel path: the element cast is the vectorized convert_f32_to_e4m3 on AVX2), the
// three tilings, re-tiling, power-of-two scales and the E5M6 cache format.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "core/numeric.h"
#include "kernels/fp8_quant.h"
#include "kernels/fp8_test_util.h"
#include "kernels/kernel_paths.h"

namespace dsv3::kernels {
namespace {

using testing::random_matrix;

// The rule of spec training §3.2, written out again for one group given as a list of values.
struct GroupRef {
  float scale;
  std::vector<uint8_t> codes;
};
GroupRef quantize_group_ref(const std::vector<float>& g, bool pow2) {
  float amax = 0;
  for (float v : g) amax = std::max(amax, std::fabs(v));
  float s = std::max(amax, 1e-4f) / 448.0f;
  if (pow2) s = std::exp2(std::ceil(std::log2(s)));  // exact for the scales that occur here
  GroupRef r{s, {}};
  for (float v : g) r.codes.push_back(f32_to_e4m3(v * (1.0f / s)));
  return r;
}

// A worked 1x128 tile: amax = 448 gives s = 1 exactly, so each code is the E4M3 cast of the value
// itself; the values sit on round-to-nearest-even ties (hand-derived codes).
TEST(Fp8Quant, WorkedTileWithTies) {
  std::vector<float> x(128, 0.0f);
  struct Case { int col; float value; uint8_t code; };
  const Case cases[] = {
      {0, 448.0f, 0x7E},                      // amax: 1.75 * 2^8, E=15 M=6
      {1, 1.0f, 0x38},                        // E=7 M=0
      {2, 1.0625f, 0x38},                     // halfway 1.0 | 1.125: ties to even mantissa 0
      {3, 1.1875f, 0x3A},                     // halfway 1.125 (M=1) | 1.25 (M=2): to M=2
      {4, -17.0f, 0xD8},                      // halfway 16 (E=11 M=0) | 18 (M=1): to -16
      {5, 0x1p-10f, 0x00},                    // halfway 0 | 2^-9 (min subnormal): to 0
      {6, 3 * 0x1p-10f, 0x02},                // halfway 2^-9 (M=1) | 2^-8 (M=2): to 2^-8
      {7, -0x1p-9f, 0x81},                    // exactly the min subnormal, negative
      {8, 0.0f, 0x00},
      {126, 240.0f, 0x77},                    // exact: 1.875 * 2^7, E=14 M=7
      {127, 248.0f, 0x78},                    // halfway 240 (M=7) | 256 (E=15 M=0): to 256
  };
  for (const Case& c : cases) x[c.col] = c.value;
  std::vector<uint8_t> q(128);
  float s = 0;
  quantize_1x128(q.data(), &s, x.data(), 1, 128, 128, ScaleFmt::kF32);
  EXPECT_EQ(s, 1.0f);
  for (const Case& c : cases) EXPECT_EQ(q[c.col], c.code) << "column " << c.col << " value " << c.value;

  // The same tile at twice the scale: amax 896 -> s = 2, every code unchanged.
  for (float& v : x) v *= 2.0f;
  quantize_1x128(q.data(), &s, x.data(), 1, 128, 128, ScaleFmt::kF32);
  EXPECT_EQ(s, 2.0f);
  for (const Case& c : cases) EXPECT_EQ(q[c.col], c.code) << "column " << c.col;
}

TEST(Fp8Quant, AmaxMapsToMaxCodeAndZeroGroupIsSafe) {
  auto x = random_matrix(16, 256, 1);
  for (int64_t c = 128; c < 256; ++c) x[size_t(3 * 256 + c)] = 0.0f;  // row 3, second tile all zero
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(16 * 2);
  quantize_1x128(q.data(), s.data(), x.data(), 16, 256, 256, ScaleFmt::kF32);
  EXPECT_EQ(s[3 * 2 + 1], 1e-4f / 448.0f);
  for (int64_t c = 128; c < 256; ++c) EXPECT_EQ(q[size_t(3 * 256 + c)], 0x00);
  for (int64_t r = 0; r < 16; ++r)
    for (int64_t g = 0; g < 2; ++g) {
      if (r == 3 && g == 1) continue;
      int n_max = 0;  // the element of largest magnitude quantizes to +-448 (f32 rounding of x/s saturates)
      for (int64_t c = g * 128; c < (g + 1) * 128; ++c) n_max += (q[size_t(r * 256 + c)] & 0x7F) == 0x7E;
      EXPECT_GE(n_max, 1) << "row " << r << " tile " << g;
    }
}

// Edge tiles along K (1, 127, 129, 200) and a non-unit row stride, against the rule per group.
TEST(Fp8Quant, Tile1x128EdgeShapes) {
  testing::for_each_path([](KernelPath) {
    for (int64_t K : {1, 127, 128, 129, 200, 256 + 5}) {
      const int64_t rows = 3, ldx = K + 7;
      auto x = random_matrix(rows, ldx, uint64_t(K), 50);
      std::vector<uint8_t> q(size_t(rows * K));
      std::vector<float> s(size_t(rows * fp8_groups(K)));
      quantize_1x128(q.data(), s.data(), x.data(), rows, K, ldx, ScaleFmt::kF32);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < fp8_groups(K); ++g) {
          std::vector<float> grp;
          for (int64_t c = g * 128; c < std::min(K, (g + 1) * 128); ++c) grp.push_back(x[size_t(r * ldx + c)]);
          GroupRef ref = quantize_group_ref(grp, false);
          ASSERT_EQ(s[size_t(r * fp8_groups(K) + g)], ref.scale) << "K=" << K << " r=" << r << " g=" << g;
          for (size_t i = 0; i < grp.size(); ++i)
            ASSERT_EQ(q[size_t(r * K + g * 128) + i], ref.codes[i]) << "K=" << K << " r=" << r << " c=" << g * 128 + int64_t(i);
        }
    }
  });
}

// 128x128 blocks with partial edge blocks in both dimensions; dequantize puts each code back
// with its block's scale.
TEST(Fp8Quant, Block128x128EdgeShapes) {
  testing::for_each_path([](KernelPath) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {127, 129}, {200, 128}, {129, 300}}) {
      auto w = random_matrix(rows, cols, uint64_t(rows * 1000 + cols), 300);
      const int64_t nrb = fp8_groups(rows), ncb = fp8_groups(cols);
      std::vector<uint8_t> q(w.size());
      std::vector<float> s(size_t(nrb * ncb));
      quantize_128x128(q.data(), s.data(), w.data(), rows, cols, ScaleFmt::kF32);
      for (int64_t rb = 0; rb < nrb; ++rb)
        for (int64_t cb = 0; cb < ncb; ++cb) {
          std::vector<float> grp;
          for (int64_t r = rb * 128; r < std::min(rows, rb * 128 + 128); ++r)
            for (int64_t c = cb * 128; c < std::min(cols, cb * 128 + 128); ++c) grp.push_back(w[size_t(r * cols + c)]);
          GroupRef ref = quantize_group_ref(grp, false);
          ASSERT_EQ(s[size_t(rb * ncb + cb)], ref.scale) << rows << "x" << cols << " block " << rb << "," << cb;
          size_t i = 0;
          for (int64_t r = rb * 128; r < std::min(rows, rb * 128 + 128); ++r)
            for (int64_t c = cb * 128; c < std::min(cols, cb * 128 + 128); ++c)
              ASSERT_EQ(q[size_t(r * cols + c)], ref.codes[i++]);
        }
      std::vector<float> back(w.size());
      dequantize_128x128(back.data(), q.data(), s.data(), rows, cols);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          ASSERT_EQ(back[size_t(r * cols + c)], e4m3_to_f32(q[size_t(r * cols + c)]) * s[size_t((r / 128) * ncb + c / 128)]);
    }
  });
}

// 128x1 tiles along rows (T = 1, 127, 129, 200), plain and transposed storage.
TEST(Fp8Quant, Tile128x1EdgeShapesAndTransposedStorage) {
  testing::for_each_path([](KernelPath) {
    for (int64_t T : {1, 127, 128, 129, 200}) {
      const int64_t C = 70, ldx = 75;
      auto x = random_matrix(T, ldx, uint64_t(T) + 77, 40);
      const int64_t nrb = fp8_groups(T);
      std::vector<uint8_t> q(size_t(T * C)), qt(size_t(T * C));
      std::vector<float> s(size_t(nrb * C)), st(size_t(nrb * C));
      quantize_128x1(q.data(), s.data(), x.data(), T, C, ldx, ScaleFmt::kF32);
      quantize_128x1_transposed(qt.data(), st.data(), x.data(), T, C, ldx, ScaleFmt::kF32);
      for (int64_t rb = 0; rb < nrb; ++rb)
        for (int64_t c = 0; c < C; ++c) {
          std::vector<float> grp;
          for (int64_t r = rb * 128; r < std::min(T, rb * 128 + 128); ++r) grp.push_back(x[size_t(r * ldx + c)]);
          GroupRef ref = quantize_group_ref(grp, false);
          ASSERT_EQ(s[size_t(rb * C + c)], ref.scale) << "T=" << T << " rb=" << rb << " c=" << c;
          ASSERT_EQ(st[size_t(c * nrb + rb)], ref.scale);
          for (size_t i = 0; i < grp.size(); ++i) {
            const int64_t r = rb * 128 + int64_t(i);
            ASSERT_EQ(q[size_t(r * C + c)], ref.codes[i]);
            ASSERT_EQ(qt[size_t(c * T + r)], ref.codes[i]);
          }
        }
      std::vector<float> back(size_t(T * C));
      dequantize_128x1(back.data(), q.data(), s.data(), T, C);
      for (int64_t r = 0; r < T; ++r)
        for (int64_t c = 0; c < C; ++c)
          ASSERT_EQ(back[size_t(r * C + c)], e4m3_to_f32(q[size_t(r * C + c)]) * s[size_t((r / 128) * C + c)]);
    }
  });
}

// Re-tiling = quantize_128x1 of the dequantized 1x128 tiles, bitwise.
TEST(Fp8Quant, RequantizeIsDequantizeThenRetile) {
  testing::for_each_path([](KernelPath) {
    const int64_t T = 300, K = 200;
    auto x = random_matrix(T, K, 5, 100);
    std::vector<uint8_t> q1(size_t(T * K)), q2(size_t(T * K)), q_ref(size_t(T * K));
    std::vector<float> s1(size_t(T * fp8_groups(K))), s2(size_t(fp8_groups(T) * K)), s_ref(s2.size());
    std::vector<float> deq(size_t(T * K));
    for (ScaleFmt fmt : {ScaleFmt::kF32, ScaleFmt::kUe8m0}) {
      quantize_1x128(q1.data(), s1.data(), x.data(), T, K, K, fmt);
      requantize_1x128_to_128x1(q2.data(), s2.data(), q1.data(), s1.data(), T, K, fmt);
      dequantize_1x128(deq.data(), q1.data(), s1.data(), T, K);
      quantize_128x1(q_ref.data(), s_ref.data(), deq.data(), T, K, K, fmt);
      EXPECT_EQ(q2, q_ref);
      EXPECT_EQ(s2, s_ref);
    }
  });
}

// Power-of-two scales: 2^ceil(log2(amax/448)), an exact power of two kept as is; x·(1/s) = x/s;
// no element needs saturation, and the amax element keeps at least 448/2 in magnitude.
TEST(Fp8Quant, PowerOfTwoScales) {
  EXPECT_EQ(fp8_scale(56.0f, ScaleFmt::kUe8m0), 0.125f);         // 56/448 = 2^-3 exactly
  EXPECT_EQ(fp8_scale(56.001f, ScaleFmt::kUe8m0), 0.25f);        // just above: exponent up
  EXPECT_EQ(fp8_scale(448.0f, ScaleFmt::kUe8m0), 1.0f);
  EXPECT_EQ(fp8_scale(300.0f, ScaleFmt::kUe8m0), 1.0f);          // 0.67 -> 2^0
  EXPECT_EQ(fp8_scale(0.0f, ScaleFmt::kUe8m0), 0x1p-22f);        // 1e-4/448 = 2.23e-7 -> 2^-22
  auto x = random_matrix(64, 384, 9, 30);
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(64 * 3);
  quantize_1x128(q.data(), s.data(), x.data(), 64, 384, 384, ScaleFmt::kUe8m0);
  for (int64_t r = 0; r < 64; ++r)
    for (int64_t g = 0; g < 3; ++g) {
      const float sc = s[size_t(r * 3 + g)];
      int exp = 0;
      ASSERT_EQ(std::frexp(sc, &exp), 0.5f) << "scale " << sc << " is not a power of two";
      float amax = 0;
      for (int64_t c = g * 128; c < g * 128 + 128; ++c) {
        const float v = x[size_t(r * 384 + c)];
        amax = std::max(amax, std::fabs(v));
        ASSERT_LE(std::fabs(v / sc), 448.0f);
        ASSERT_EQ(q[size_t(r * 384 + c)], f32_to_e4m3(v / sc));  // division and reciprocal agree
      }
      EXPECT_GE(amax / sc, 224.0f);
      EXPECT_LE(amax / sc, 448.0f);
    }
}

// A NaN element becomes a NaN code without disturbing the scale of its tile; saturation holds for
// a value that rounds past 448 after the multiply by 1/s.
TEST(Fp8Quant, NanAndSaturation) {
  testing::for_each_path([](KernelPath) {
    std::vector<float> x(128, 1.0f);
    x[5] = std::numeric_limits<float>::quiet_NaN();
    x[6] = -3.5f;
    std::vector<uint8_t> q(128);
    float s = 0;
    quantize_1x128(q.data(), &s, x.data(), 1, 128, 128, ScaleFmt::kF32);
    EXPECT_EQ(s, 3.5f / 448.0f);
    EXPECT_EQ(q[5] & 0x7F, 0x7F);
    EXPECT_EQ(q[6], 0xFE);
    EXPECT_EQ(fp8_quantize_value(1000.0f, 1.0f), 0x7E);
    EXPECT_EQ(fp8_quantize_value(-465.0f, 1.0f), 0xFE);
  });
}

TEST(Fp8Quant, TransposeCodes) {
  const int64_t R = 67, C = 130;
  std::vector<uint8_t> a(size_t(R * C)), t(a.size());
  for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 37 + 11);
  transpose_codes(t.data(), a.data(), R, C);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(t[size_t(c * R + r)], a[size_t(r * C + c)]);
}

// E5M6 (assumed IEEE-like, bias 15, saturating): hand points, then every finite code round-trips.
TEST(Fp8Quant, E5M6Format) {
  EXPECT_EQ(f32_to_e5m6(1.0f), 0x3C0);                      // E=15 M=0
  EXPECT_EQ(f32_to_e5m6(1.0f + 0x1p-7f), 0x3C0);            // tie 1 | 1+2^-6: to even
  EXPECT_EQ(f32_to_e5m6(1.0f + 3 * 0x1p-7f), 0x3C2);        // tie 1+2^-6 | 1+2^-5: to M=2
  EXPECT_EQ(f32_to_e5m6(-2.0f), 0x800 | 0x400);
  EXPECT_EQ(f32_to_e5m6(65024.0f), 0x7BF);
  EXPECT_EQ(f32_to_e5m6(1e9f), 0x7BF);                      // saturates
  EXPECT_EQ(f32_to_e5m6(0x1p-20f), 0x001);                  // min subnormal
  EXPECT_EQ(f32_to_e5m6(0x1p-21f), 0x000);                  // tie to even zero
  EXPECT_TRUE(std::isnan(e5m6_to_f32(f32_to_e5m6(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(e5m6_to_f32(0x7BF), 65024.0f);
  for (uint16_t b = 0; b < 0x1000; ++b) {
    if ((b & 0x7C0) == 0x7C0) continue;
    ASSERT_EQ(f32_to_e5m6(e5m6_to_f32(b)), b) << std::hex << b;
  }
  // A 1x128 E5M6 tile: power-of-two scale, every element within half a step (2^-7 relative to
  // its binade) of the input.
  auto x = random_matrix(4, 200, 21, 20);
  std::vector<uint16_t> q(x.size());
  std::vector<float> s(4 * 2), back(x.size());
  quantize_e5m6_1x128(q.data(), s.data(), x.data(), 4, 200, 200);
  dequantize_e5m6_1x128(back.data(), q.data(), s.data(), 4, 200);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_LE(std::fabs(back[i] - x[i]), std::fabs(x[i]) * 0x1p-7f) << i;
}

}  // namespace
}  // namespace dsv3::kernels
