// The few AVX2/FMA/F16C building blocks the *_avx2.cpp kernels share: eight weights of any
// storage type widened to one __m256 of f32, and a horizontal sum. Include only from *_avx2.cpp
// files (see dispatch.h for how they are compiled); every function here is compiled for
// avx2+fma+f16c and must only run after the dispatcher chose the AVX2 path.
#pragma once

#include <immintrin.h>

#include <cstdint>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsv3::kernels::detail {

// 8 x bf16 -> 8 x f32: zero-extend each 16-bit word to 32 bits and shift it to the top half
// (bf16 is the upper half of an f32). 2 uops (vpmovzxwd with a folded load, vpslld).
inline __m256 load8_bf16(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 x f16 -> 8 x f32 with F16C (exact).
inline __m256 load8_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// 8 x E4M3 -> 8 x f16 bit patterns whose values are the E4M3 values times 2^-8 (exact for all 254
// finite codes, normals and subnormals: the 4-bit exponent with bias 7 becomes a 5-bit exponent
// with bias 15, i.e. the same bits mean 2^-8 of the value). Scalar meaning per byte b:
//   h = ((b & 0x80) << 8) | ((b & 0x7F) << 7)
// done as: sign-extend b to 16 bits (bit 15 = sign), shift left 7 (bits 13..7 = EEEEMMM, bit 14 =
// sign again), clear bit 14. The NaN codes 0x7F/0xFF become +-1.875 (= 480 after the 2^8): callers
// that must keep NaN fix them up (e4m3_nan_mask16), the weight kernels do not (see matmul.h).
inline __m128i e4m3x8_to_f16_bits(const uint8_t* p) {
  __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  __m128i w = _mm_slli_epi16(_mm_cvtepi8_epi16(b), 7);
  return _mm_and_si128(w, _mm_set1_epi16(int16_t(0xBF80)));
}

// 16 x E4M3 -> two __m256 of f32 holding the values times 2^-8 (unscaled; see above). One
// 256-bit sign-extend, shift and mask for all 16 codes, then two F16C widenings: 8 ALU uops per
// 16 weights, against 12 with the 8-wide helper.
inline void e4m3x16_to_f32_unscaled(const uint8_t* p, __m256& lo, __m256& hi) {
  __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  w = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16(int16_t(0xBF80)));
  lo = _mm256_cvtph_ps(_mm256_castsi256_si128(w));
  hi = _mm256_cvtph_ps(_mm256_extracti128_si256(w, 1));
}

// The same 16 values through memory: the f16 bits are stored to `scratch` (32 bytes, 32-aligned)
// and widened by the memory form of vcvtph2ps, whose lane-crossing part runs on a load port.
// The register form needs a shuffle-port uop per 8 values plus a 128-bit extract: 10 ALU uops per
// 16 weights, 4 on the shuffle port, against 7 and 1 here (a loop of this and two FMAs: 13 -> 16
// G weights/s on one core). The asm keeps the compiler from folding the reload into shuffles.
inline void e4m3x16_to_f32_unscaled_via(const uint8_t* p, uint16_t* scratch, __m256& lo, __m256& hi) {
  __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  w = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16(int16_t(0xBF80)));
  _mm256_store_si256(reinterpret_cast<__m256i*>(scratch), w);
  asm("vcvtph2ps %1, %0" : "=x"(lo) : "m"(*reinterpret_cast<const __m128i*>(scratch)));
  asm("vcvtph2ps %1, %0" : "=x"(hi) : "m"(*reinterpret_cast<const __m128i*>(scratch + 8)));
}

// Lanes (16-bit) of an e4m3x8_to_f16_bits result that came from a NaN code (all ones there).
inline __m128i e4m3_nan_mask16(__m128i h) {
  return _mm_cmpeq_epi16(_mm_or_si128(h, _mm_set1_epi16(int16_t(0x8000))), _mm_set1_epi16(int16_t(0xBF80)));
}

// 8 x E4M3 -> 8 x f32 multiplied by `scale256` (= the block scale times 2^8, which undoes the
// 2^-8 of the f16 reinterpretation). Equals e4m3_to_f32(b) * scale rounded once, like the scalar
// path: multiplying by a power of two does not change how the product rounds.
inline __m256 load8_e4m3_scaled(const uint8_t* p, __m256 scale256) {
  return _mm256_mul_ps(_mm256_cvtph_ps(e4m3x8_to_f16_bits(p)), scale256);
}

// Sum of the 8 lanes in a fixed order ((0+4)+(2+6))+((1+5)+(3+7)), so results do not depend on
// anything but the input.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace dsv3::kernels::detail

#pragma GCC pop_options
