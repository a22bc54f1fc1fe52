// AVX2 path of swiglu_forward / swiglu_backward (activation.h): the scalar formulas with the same
// operation order, eight lanes at a time, exp from exp_avx2.h (within 2 ulp). The row tail goes
// through the same vector code under a mask, so every element is computed the same way wherever
// a thread's chunk begins or ends (results identical for any thread count).
#include <immintrin.h>

#include "kernels/avx2.h"
#include "kernels/exp_avx2.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsv3::kernels::avx2 {
namespace {

using detail::exp8;

__m256i lanes_below(int64_t rem) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rem)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// σ(g) = 1 / (1 + exp(−g)), as activation.h's sigmoid.
inline __m256 sigmoid8(__m256 g) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

}  // namespace

// Scalar meaning: out[i] = (gate[i] / (1 + exp(−gate[i]))) · up[i].
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  auto step = [&](__m256 g, __m256 u) {
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    return _mm256_mul_ps(silu, u);
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, step(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    const __m256i m = lanes_below(n - i);
    _mm256_maskstore_ps(out + i, m, step(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
  }
}

// Scalar meaning, with σ = sigmoid(g):  dgate[i] += (dout·up)·(σ·(1 + g·(1 − σ)));  dup[i] += dout·(g·σ).
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  auto step = [&](__m256 d, __m256 g, __m256 u, __m256& dg, __m256& du) {
    const __m256 sg = sigmoid8(g);
    const __m256 deriv = _mm256_mul_ps(sg, _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, sg))));
    dg = _mm256_add_ps(dg, _mm256_mul_ps(_mm256_mul_ps(d, u), deriv));
    du = _mm256_add_ps(du, _mm256_mul_ps(d, _mm256_mul_ps(g, sg)));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 dg = _mm256_loadu_ps(dgate + i), du = _mm256_loadu_ps(dup + i);
    step(_mm256_loadu_ps(dout + i), _mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i), dg, du);
    _mm256_storeu_ps(dgate + i, dg);
    _mm256_storeu_ps(dup + i, du);
  }
  if (i < n) {
    const __m256i m = lanes_below(n - i);
    __m256 dg = _mm256_maskload_ps(dgate + i, m), du = _mm256_maskload_ps(dup + i, m);
    step(_mm256_maskload_ps(dout + i, m), _mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m), dg, du);
    _mm256_maskstore_ps(dgate + i, m, dg);
    _mm256_maskstore_ps(dup + i, m, du);
  }
}

}  // namespace dsv3::kernels::avx2

#pragma GCC pop_options
