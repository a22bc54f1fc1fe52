// exp on eight f32 lanes (AVX2 + FMA), for the *_avx2.cpp kernels only (see dispatch.h for how
// they are compiled). Cephes' expf scheme: n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in a
// part exact in f32 and a correction, so r carries no cancellation error), exp(r) by a degree-7
// polynomial (1 + r + r²·P(r), P of degree 5 on |r| <= ln2 / 2, Cephes peak relative error 1.3e-7
// in f32), then the exponent n added through the bits of 2^n. The contract (range ends, NaN,
// measured error) is in exp_rows.h.
#pragma once

#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsv3::kernels::detail {

inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3365447504f);  // ln(FLT_MIN): 2^n stays a normal number
  const __m256 hi = _mm256_set1_ps(88.3762626647949f);  // round(x·log2 e) <= 127
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);  // 0.693359375 = 355/512, exact
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  // Range ends and NaN (the min/max above would have replaced a NaN by a bound).
  y = _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

}  // namespace dsv3::kernels::detail

#pragma GCC pop_options
