// AVX-512 twin of the GEMM micro-kernel (gemm_avx2.cpp) on the same packed panels: a 12 x 32 tile
// of C from two 6-row A micro-panels and two 16-column B micro-panels. A 16-column B row is one
// ZMM register, so 12 rows x 2 registers = 24 accumulators (+ 2 B + 1 A of the 32 registers).
// Every C element is one FMA chain over k in order, as in the 6 x 16 kernel: the results are
// bitwise those of four 6 x 16 tiles.
#include "kernels/gemm_avx2.h"

#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")

namespace dsv3::kernels::avx512 {

using avx2::kMR;
using avx2::kNR;

void micro_kernel_12x32(int64_t kc, const float* __restrict a0, const float* __restrict a1,
                        const float* __restrict b0, const float* __restrict b1, float* c, int64_t ldc, bool add) {
  for (int i = 0; i < 2 * kMR; ++i) {  // C rows into L1 behind the FMA loop (see the AVX2 kernel)
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 2 * kNR - 1), _MM_HINT_T0);
  }
  __m512 acc[2 * kMR][2];
#pragma GCC unroll 12
  for (int i = 0; i < 2 * kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 v0 = _mm512_load_ps(b0 + k * kNR), v1 = _mm512_load_ps(b1 + k * kNR);
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
      const __m512 ak = _mm512_set1_ps(a0[k * kMR + i]);
      acc[i][0] = _mm512_fmadd_ps(ak, v0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ak, v1, acc[i][1]);
    }
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
      const __m512 ak = _mm512_set1_ps(a1[k * kMR + i]);
      acc[kMR + i][0] = _mm512_fmadd_ps(ak, v0, acc[kMR + i][0]);
      acc[kMR + i][1] = _mm512_fmadd_ps(ak, v1, acc[kMR + i][1]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < 2 * kMR; ++i) {
    float* ci = c + i * ldc;
    __m512 u0 = acc[i][0], u1 = acc[i][1];
    if (add) {
      u0 = _mm512_add_ps(_mm512_loadu_ps(ci), u0);
      u1 = _mm512_add_ps(_mm512_loadu_ps(ci + kNR), u1);
    }
    _mm512_storeu_ps(ci, u0);
    _mm512_storeu_ps(ci + kNR, u1);
  }
}

}  // namespace dsv3::kernels::avx512

#pragma GCC pop_options
