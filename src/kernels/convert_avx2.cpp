// AVX2 path of the array conversions (convert.h). Each loop handles 8 elements per step with the
// scalar meaning written above it; the last n % 8 elements go through core/numeric.h, which the
// vector steps equal bit for bit (tests/kernels/convert_test.cpp checks every code).
#include <immintrin.h>


#include "core/numeric.h"
#include "kernels/convert.h"
#include "kernels/avx2.h"
#include "kernels/simd_avx2.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsv3::kernels::avx2 {
namespace {

// Eight int32 lanes holding values in [0, 65535] -> eight uint16 (unsigned saturating packs).
inline __m128i pack_u16(__m256i v) {
  return _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

}  // namespace

// Eight f32 -> their BF16 bits in the low 16 bits of each lane: u += 0x7FFF + ((u >> 16) & 1);
// NaN -> (u >> 16) | 0x40 (quiet, sign kept). The scalar f32_to_bf16, lane by lane.
inline __m256i bf16_bits(__m256 f) {
  const __m256i u = _mm256_castps_si256(f);
  __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)),
                               _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1)));
  r = _mm256_srli_epi32(r, 16);
  const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256 nan = _mm256_cmp_ps(f, f, _CMP_UNORD_Q);
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(q), nan));
}

void convert_f32_to_bf16(uint16_t* out, const float* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), pack_u16(bf16_bits(_mm256_loadu_ps(in + i))));
  for (; i < n; ++i) out[i] = f32_to_bf16(in[i]);
}

void round_f32_to_bf16(float* out, const float* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(bf16_bits(_mm256_loadu_ps(in + i)), 16)));
  for (; i < n; ++i) out[i] = round_to_bf16(in[i]);
}

void convert_bf16_to_f32(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, detail::load8_bf16(in + i));
  for (; i < n; ++i) out[i] = bf16_to_f32(in[i]);
}

void convert_f16_to_f32(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, detail::load8_f16(in + i));
  for (; i < n; ++i) out[i] = f16_to_f32(in[i]);
}

void convert_e4m3_to_f32(float* out, const uint8_t* in, int64_t n) {
  int64_t i = 0;
  const __m256 k256 = _mm256_set1_ps(256.0f);
  for (; i + 8 <= n; i += 8) {
    // f16 trick (simd_avx2.h), then the NaN codes, which the trick maps to +-1.875, become f16
    // NaN (all ones) before widening.
    __m128i h = detail::e4m3x8_to_f16_bits(in + i);
    h = _mm_or_si128(h, detail::e4m3_nan_mask16(h));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtph_ps(h), k256));
  }
  for (; i < n; ++i) out[i] = e4m3_to_f32(in[i]);
}

void convert_f32_to_e4m3(uint8_t* out, const float* in, int64_t n) {
  int64_t i = 0;
  const __m256 kMax = _mm256_set1_ps(kE4M3Max), kMinNormal = _mm256_set1_ps(0x1p-6f);
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), lsb = _mm256_set1_epi32(1);
  for (; i + 8 <= n; i += 8) {
    __m256 f = _mm256_loadu_ps(in + i);
    __m256i u = _mm256_castps_si256(f);
    __m256i sign = _mm256_srli_epi32(_mm256_andnot_si256(abs_mask, u), 24);  // 0x80 or 0
    // a = min(|f|, 448): saturation first, so rounding can never leave the finite range.
    __m256 a = _mm256_min_ps(_mm256_castsi256_ps(_mm256_and_si256(u, abs_mask)), kMax);
    // Normal range (a >= 2^-6): round the f32 mantissa to 3 bits, nearest even,
    //   r = (bits(a) + 0x7FFFF + ((bits(a) >> 20) & 1)) >> 20,
    // which leaves (f32 exponent << 3 | mantissa); rebias 127 -> 7: code = r - (120 << 3).
    __m256i ua = _mm256_castps_si256(a);
    __m256i r = _mm256_add_epi32(ua, _mm256_set1_epi32(0x7FFFF));
    r = _mm256_add_epi32(r, _mm256_and_si256(_mm256_srli_epi32(ua, 20), lsb));
    __m256i normal = _mm256_sub_epi32(_mm256_srli_epi32(r, 20), _mm256_set1_epi32(120 << 3));
    // Subnormal range (a < 2^-6): code = nearbyint(a / 2^-9) in 0..8 (8 is the smallest normal's
    // code, as it should be). Exact scaling, then the current rounding mode (nearest even).
    __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(a, _mm256_set1_ps(512.0f)));
    __m256 is_sub = _mm256_cmp_ps(a, kMinNormal, _CMP_LT_OQ);
    __m256i code = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(normal), _mm256_castsi256_ps(sub), is_sub));
    __m256 nan = _mm256_cmp_ps(f, f, _CMP_UNORD_Q);
    code = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(code), _mm256_castsi256_ps(_mm256_set1_epi32(0x7F)), nan));
    code = _mm256_or_si256(code, sign);
    __m128i w = pack_u16(code);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packus_epi16(w, w));
  }
  for (; i < n; ++i) out[i] = f32_to_e4m3(in[i]);
}

// |x| in eight lanes with NaN skipped: maxps returns its second operand when either is NaN, so
// max(|x|, acc) keeps acc for a NaN x, exactly as abs_max_step. Four accumulators hide the
// latency; max is exact, so merging them in any order gives the scalar result.
float abs_max(const float* x, int64_t n) {
  const __m256 mag = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), mag), a0);
    a1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 8), mag), a1);
    a2 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 16), mag), a2);
    a3 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 24), mag), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), mag), a0);
  const __m256 m = _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float amax = _mm_cvtss_f32(h);
  for (; i < n; ++i) amax = abs_max_step(amax, x[i]);
  return amax;
}

void abs_max_into(float* amax, const float* x, int64_t n) {
  const __m256 mag = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(amax + i, _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), mag), _mm256_loadu_ps(amax + i)));
  }
  for (; i < n; ++i) amax[i] = abs_max_step(amax[i], x[i]);
}

}  // namespace dsv3::kernels::avx2

#pragma GCC pop_options
