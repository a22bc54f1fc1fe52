// AVX2 path of exp_rows.h: eight lanes per step; the row tail is loaded under a mask and padded
// with -inf (exp gives 0 there, max ignores it), so every element goes through the same exp8.
#include <immintrin.h>

#include <limits>

#include "kernels/avx2.h"
#include "kernels/exp_avx2.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsv3::kernels::avx2 {
namespace {

using detail::exp8;

// Lane mask of the first `rem` (1..7) lanes.
__m256i tail_mask(int64_t rem) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rem)), idx);
}

// The tail lanes of x, -inf in the others.
__m256 load_tail(const float* x, __m256i mask) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  return _mm256_blendv_ps(ninf, _mm256_maskload_ps(x, mask), _mm256_castsi256_ps(mask));
}

}  // namespace

float row_max(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  if (i < n) m = _mm256_max_ps(m, load_tail(x + i, tail_mask(n - i)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float r = lanes[0];
  for (int j = 1; j < 8; ++j) r = r > lanes[j] ? r : lanes[j];
  return r;
}

// Scalar meaning: sum over i of double(exp8(scale·x_i − shift)), accumulated as two 4-lane double
// vectors (lanes 0-3 and 4-7 of each group of eight) and combined in a fixed order at the end.
double row_sum_exp(const float* x, int64_t n, float scale, float shift) {
  const __m256 vs = _mm256_set1_ps(scale), vsh = _mm256_set1_ps(shift);
  __m256d lo = _mm256_setzero_pd(), hi = lo;
  auto add = [&](__m256 xv) {
    const __m256 e = exp8(_mm256_fmsub_ps(vs, xv, vsh));
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) add(_mm256_loadu_ps(x + i));
  if (i < n) add(load_tail(x + i, tail_mask(n - i)));
  alignas(32) double l[4], h[4];
  _mm256_store_pd(l, lo);
  _mm256_store_pd(h, hi);
  return ((l[0] + h[0]) + (l[2] + h[2])) + ((l[1] + h[1]) + (l[3] + h[3]));
}

void row_exp(float* out, const float* x, int64_t n, float scale, float shift, float mul, bool accumulate) {
  const __m256 vs = _mm256_set1_ps(scale), vsh = _mm256_set1_ps(shift), vm = _mm256_set1_ps(mul);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = _mm256_mul_ps(vm, exp8(_mm256_fmsub_ps(vs, _mm256_loadu_ps(x + i), vsh)));
    if (accumulate) e = _mm256_add_ps(_mm256_loadu_ps(out + i), e);
    _mm256_storeu_ps(out + i, e);
  }
  if (i < n) {
    const __m256i mask = tail_mask(n - i);
    __m256 e = _mm256_mul_ps(vm, exp8(_mm256_fmsub_ps(vs, load_tail(x + i, mask), vsh)));
    if (accumulate) e = _mm256_add_ps(_mm256_maskload_ps(out + i, mask), e);
    _mm256_maskstore_ps(out + i, mask, e);
  }
}

float exp_f32(float x) { return _mm256_cvtss_f32(exp8(_mm256_set1_ps(x))); }

}  // namespace dsv3::kernels::avx2

#pragma GCC pop_options
