// The array conversions (kernels/convert.h) equal the scalar specification (core/numeric.h) bit
// for bit on every path: for every BF16/F16/E4M3 code, and for f32 inputs made of every BF16 and
// F16 value, their neighbours and midpoints, and random bit patterns (NaN, inf, subnormals
// included). Arrays start at odd offsets and have lengths that leave vector tails.
#include "kernels/convert.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/numeric.h"
#include "core/rng.h"
#include "kernels/kernel_paths.h"

namespace dsv3::kernels {
namespace {

bool same(float a, float b) {
  return std::isnan(a) ? std::isnan(b) : std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

std::vector<float> interesting_floats() {
  std::vector<float> xs;
  for (uint32_t c = 0; c < 65536; ++c) {
    const uint32_t b = c << 16;
    for (uint32_t delta : {0u, 1u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu}) xs.push_back(std::bit_cast<float>(b | delta));
    xs.push_back(f16_to_f32(uint16_t(c)));
  }
  for (uint32_t c = 0; c < 256; ++c) {  // E4M3 values and the midpoints between neighbours
    const float v = e4m3_to_f32(uint8_t(c)), w = e4m3_to_f32(uint8_t(c + 1));
    xs.push_back(v);
    if ((c & 0x7F) < 0x7E) xs.push_back(float((double(v) + w) / 2));
  }
  Rng rng(7);
  for (int i = 0; i < 300000; ++i) xs.push_back(std::bit_cast<float>(uint32_t(rng.next_bits())));
  for (int i = 0; i < 300000; ++i) xs.push_back(std::ldexp(rng.next_normal(), int(rng.next_bits() % 24) - 14));
  return xs;
}

constexpr int64_t kOffset = 3;  // misalign every array

TEST(Convert, Bf16ToF32EveryCode) {
  std::vector<uint16_t> in(65536 + kOffset);
  for (uint32_t c = 0; c < 65536; ++c) in[c + kOffset] = uint16_t(c);
  testing::for_each_path([&](KernelPath) {
    std::vector<float> out(in.size());
    convert_bf16_to_f32(out.data() + kOffset, in.data() + kOffset, 65536);
    for (uint32_t c = 0; c < 65536; ++c) ASSERT_TRUE(same(out[c + kOffset], bf16_to_f32(uint16_t(c)))) << c;
  });
}

TEST(Convert, F16ToF32EveryCode) {
  std::vector<uint16_t> in(65536 + kOffset);
  for (uint32_t c = 0; c < 65536; ++c) in[c + kOffset] = uint16_t(c);
  testing::for_each_path([&](KernelPath) {
    std::vector<float> out(in.size());
    convert_f16_to_f32(out.data() + kOffset, in.data() + kOffset, 65536);
    for (uint32_t c = 0; c < 65536; ++c) ASSERT_TRUE(same(out[c + kOffset], f16_to_f32(uint16_t(c)))) << c;
  });
}

TEST(Convert, E4M3ToF32EveryCodeAndTail) {
  testing::for_each_path([&](KernelPath) {
    for (int64_t n : {256, 255, 7, 1}) {  // vector body and scalar tails both see every code
      for (int shift = 0; shift < 8; ++shift) {
        std::vector<uint8_t> in(size_t(n) + kOffset);
        for (int64_t i = 0; i < n; ++i) in[size_t(i + kOffset)] = uint8_t(i * 37 + shift);
        std::vector<float> out(in.size());
        convert_e4m3_to_f32(out.data() + kOffset, in.data() + kOffset, n);
        for (int64_t i = 0; i < n; ++i) {
          const uint8_t c = in[size_t(i + kOffset)];
          ASSERT_TRUE(same(out[size_t(i + kOffset)], e4m3_to_f32(c))) << int(c);
        }
      }
    }
  });
}

TEST(Convert, F32ToBf16AndE4M3AndBf16RoundingMatchScalar) {
  const std::vector<float> xs = interesting_floats();
  testing::for_each_path([&](KernelPath) {
    for (int64_t n : {int64_t(xs.size()), int64_t(13)}) {
      std::vector<uint16_t> b(size_t(n) + kOffset);
      std::vector<uint8_t> e(size_t(n) + kOffset);
      std::vector<float> in(size_t(n) + kOffset);
      std::memcpy(in.data() + kOffset, xs.data(), size_t(n) * sizeof(float));
      convert_f32_to_bf16(b.data() + kOffset, in.data() + kOffset, n);
      convert_f32_to_e4m3(e.data() + kOffset, in.data() + kOffset, n);
      std::vector<float> rounded(size_t(n) + kOffset), in_place = in;
      round_f32_to_bf16(rounded.data() + kOffset, in.data() + kOffset, n);
      round_f32_to_bf16(in_place.data() + kOffset, in_place.data() + kOffset, n);  // out == in
      int bad = 0;
      for (int64_t i = 0; i < n && bad < 10; ++i) {
        const float x = xs[size_t(i)];
        if (b[size_t(i + kOffset)] != f32_to_bf16(x)) ++bad, ADD_FAILURE() << "bf16 of bits " << std::bit_cast<uint32_t>(x);
        if (e[size_t(i + kOffset)] != f32_to_e4m3(x)) ++bad, ADD_FAILURE() << "e4m3 of " << x;
        if (!same(rounded[size_t(i + kOffset)], round_to_bf16(x)) || !same(in_place[size_t(i + kOffset)], round_to_bf16(x)))
          ++bad, ADD_FAILURE() << "bf16 rounding of bits " << std::bit_cast<uint32_t>(x);
      }
    }
  });
}

// The quantizers' scale search: every path equals the scalar fold of abs_max_step (exact), on
// random floats with NaN, ±inf, -0 and subnormals mixed in, for lengths around the vector widths.
TEST(Convert, AbsMaxMatchesScalarFold) {
  const float specials[] = {std::nanf(""), -std::nanf(""), INFINITY, -INFINITY, -0.0f, 1e-45f, -3e-39f};
  Rng rng(11);
  for (int64_t n : {0, 1, 7, 8, 9, 31, 32, 33, 127, 128, 129, 1000}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> x(size_t(n + kOffset)), acc(size_t(n + kOffset));
      for (auto& v : x) v = rng.next_normal() * std::ldexp(1.0f, int(rng.next_bits() % 40) - 20);
      for (auto& v : acc) v = std::fabs(rng.next_normal());
      for (int k = 0; k < 3 && n > 0; ++k) {
        x[size_t(kOffset + int64_t(rng.next_bits() % uint64_t(n)))] = specials[rng.next_bits() % 7];
      }
      if (trial == 0) std::fill(x.begin(), x.end(), std::nanf(""));  // all NaN: 0
      float want = 0.0f;
      std::vector<float> want_acc = acc;
      for (int64_t i = 0; i < n; ++i) {
        want = abs_max_step(want, x[size_t(kOffset + i)]);
        want_acc[size_t(kOffset + i)] = abs_max_step(want_acc[size_t(kOffset + i)], x[size_t(kOffset + i)]);
      }
      testing::for_each_path([&](KernelPath path) {
        EXPECT_TRUE(same(abs_max(x.data() + kOffset, n), want)) << "n=" << n << " path=" << kernel_path_name(path);
        std::vector<float> got = acc;
        abs_max_into(got.data() + kOffset, x.data() + kOffset, n);
        for (int64_t i = 0; i < n; ++i)
          EXPECT_TRUE(same(got[size_t(kOffset + i)], want_acc[size_t(kOffset + i)])) << "n=" << n << " i=" << i;
      });
    }
  }
}

TEST(Convert, EmptyArraysAreFine) {
  testing::for_each_path([&](KernelPath) {
    convert_f32_to_bf16(nullptr, nullptr, 0);
    convert_bf16_to_f32(nullptr, nullptr, 0);
    convert_f16_to_f32(nullptr, nullptr, 0);
    convert_e4m3_to_f32(nullptr, nullptr, 0);
    convert_f32_to_e4m3(nullptr, nullptr, 0);
  });
}

}  // namespace
}  // namespace dsv3::kernels
