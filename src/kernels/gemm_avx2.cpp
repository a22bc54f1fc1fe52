// AVX2 path of the FP32 GEMM (gemm.h): panel packing, the 6x16 FMA micro-kernel and the blocked
// driver declared in gemm_avx2.h.
#include "kernels/gemm_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/parallel_for.h"
#include "kernels/avx2.h"
#include "kernels/dispatch.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsv3::kernels::avx2 {
namespace {

// C tile (6 x 16) = A micro-panel (kc x 6) · B micro-panel (kc x 16), plus C when `add`.
// Scalar meaning: acc[i][j] = sum over k in order of a[k*6 + i] * b[k*16 + j] (one FMA chain per
// element); c[i][j] = add ? c[i][j] + acc[i][j] : acc[i][j].
// Per k: 2 loads of B, 6 broadcasts of A, 12 FMAs; 12 independent chains cover the FMA latency
// (4 cycles x 2 ports = 8 in flight).
inline void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                         int64_t ldc, bool add) {
  // The C tile is read (add) or written at the end; C is usually larger than L2, so start pulling
  // its 6 rows (one or two lines each) into L1 now, hidden behind the kc-long FMA loop. Without
  // this, the loads of C were ~20% of the time of a 1024^3 product (perf).
  for (int i = 0; i < kMR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ak = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ak, b0, c00);
    c01 = _mm256_fmadd_ps(ak, b1, c01);
    ak = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ak, b0, c10);
    c11 = _mm256_fmadd_ps(ak, b1, c11);
    ak = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ak, b0, c20);
    c21 = _mm256_fmadd_ps(ak, b1, c21);
    ak = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ak, b0, c30);
    c31 = _mm256_fmadd_ps(ak, b1, c31);
    ak = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ak, b0, c40);
    c41 = _mm256_fmadd_ps(ak, b1, c41);
    ak = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ak, b0, c50);
    c51 = _mm256_fmadd_ps(ak, b1, c51);
    a += kMR;
    b += kNR;
  }
  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int i = 0; i < kMR; ++i) {
    float* ci = c + i * ldc;
    __m256 v0 = acc[i][0], v1 = acc[i][1];
    if (add) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(ci), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(ci + 8), v1);
    }
    _mm256_storeu_ps(ci, v0);
    _mm256_storeu_ps(ci + 8, v1);
  }
}

// An edge tile (mr < 6 or nr < 16): the same micro-kernel into a local tile, then the valid part
// with the same scalar meaning.
void edge_tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr, int64_t nr,
               bool add) {
  alignas(32) float tile[kMR * kNR];
  micro_kernel(kc, a, b, tile, kNR, false);
  for (int64_t i = 0; i < mr; ++i) {
    for (int64_t j = 0; j < nr; ++j) {
      c[i * ldc + j] = add ? c[i * ldc + j] + tile[i * kNR + j] : tile[i * kNR + j];
    }
  }
}

// The 8x8 transpose: col[k][i] = row[i][k] (unpack, shuffle, 128-bit permute: 24 shuffles for 64
// values, against 64 scalar loads and stores).
inline void transpose8x8(const __m256 (&r)[8], __m256 (&col)[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  // Column k = [rows 0-3 of k ; rows 4-7 of k]: low halves give k = 0..3, high halves k = 4..7.
  col[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  col[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  col[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  col[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  col[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  col[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  col[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  col[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// 8 consecutive k of 6 rows (row i at src + i * lda) written k-major: dst[k * 6 + i]. The six rows
// and two zero rows go through the 8x8 transpose, and each column keeps its first 6.
inline void pack6x8(float* dst, const float* src, int64_t lda) {
  const __m256 z = _mm256_setzero_ps();
  const __m256 r[8] = {_mm256_loadu_ps(src),           _mm256_loadu_ps(src + lda),     _mm256_loadu_ps(src + 2 * lda),
                       _mm256_loadu_ps(src + 3 * lda), _mm256_loadu_ps(src + 4 * lda), _mm256_loadu_ps(src + 5 * lda),
                       z,                              z};
  __m256 col[8];
  transpose8x8(r, col);
  for (int k = 0; k < 8; ++k) {
    _mm_storeu_ps(dst + k * kMR, _mm256_castps256_ps128(col[k]));
    _mm_storel_pi(reinterpret_cast<__m64*>(dst + k * kMR + 4), _mm256_extractf128_ps(col[k], 1));
  }
}

// 8 consecutive k of 16 stored rows (row j at src + j * ldb) written as one k-major 16-wide panel
// slice: dst[k * 16 + j]. Two 8x8 transposes; this is op(B) = Bᵀ, the forward x·Wᵀ of every Linear.
inline void pack16x8(float* dst, const float* src, int64_t ldb) {
  for (int h = 0; h < 2; ++h) {
    const float* s = src + h * 8 * ldb;
    const __m256 r[8] = {_mm256_loadu_ps(s),           _mm256_loadu_ps(s + ldb),     _mm256_loadu_ps(s + 2 * ldb),
                         _mm256_loadu_ps(s + 3 * ldb), _mm256_loadu_ps(s + 4 * ldb), _mm256_loadu_ps(s + 5 * ldb),
                         _mm256_loadu_ps(s + 6 * ldb), _mm256_loadu_ps(s + 7 * ldb)};
    __m256 col[8];
    transpose8x8(r, col);
    for (int k = 0; k < 8; ++k) _mm256_store_ps(dst + k * kNR + h * 8, col[k]);
  }
}

// op(B) from a row-major f32 matrix.
class F32B final : public BPanelSource {
 public:
  F32B(const float* b, int64_t ldb, Op op) : b_(b), ldb_(ldb), op_(op) {}
  void pack(float* dst, int64_t k0, int64_t nk, int64_t j0, int64_t nj) const override {
    for (int64_t p = 0; p < nj; p += kNR, dst += nk * kNR) {
      const int64_t cols = std::min(kNR, nj - p);
      if (op_ == Op::N && cols == kNR) {  // op(B)[k, j] = b[k * ldb + j]: two vector copies per k
        for (int64_t k = 0; k < nk; ++k) {
          const float* src = b_ + (k0 + k) * ldb_ + j0 + p;
          _mm256_store_ps(dst + k * kNR, _mm256_loadu_ps(src));
          _mm256_store_ps(dst + k * kNR + 8, _mm256_loadu_ps(src + 8));
        }
      } else if (op_ == Op::N) {
        for (int64_t k = 0; k < nk; ++k) {
          const float* src = b_ + (k0 + k) * ldb_ + j0 + p;
          for (int64_t j = 0; j < kNR; ++j) dst[k * kNR + j] = j < cols ? src[j] : 0.0f;
        }
      } else if (cols == kNR) {  // op(B)[k, j] = b[j * ldb + k]: 16 stored rows
        pack_rows_as_b_panel(dst, b_ + (j0 + p) * ldb_ + k0, ldb_, nk);
      } else {  // each stored row becomes one column of the panel
        std::memset(dst, 0, size_t(nk * kNR) * sizeof(float));
        for (int64_t j = 0; j < cols; ++j) {
          const float* src = b_ + (j0 + p + j) * ldb_ + k0;
          for (int64_t k = 0; k < nk; ++k) dst[k * kNR + j] = src[k];
        }
      }
    }
  }

 private:
  const float* b_;
  int64_t ldb_;
  Op op_;
};

}  // namespace

void pack_rows_as_b_panel(float* dst, const float* rows, int64_t ld, int64_t nk) {
  int64_t k = 0;
  for (; k + 8 <= nk; k += 8) pack16x8(dst + k * kNR, rows + k, ld);
  for (; k < nk; ++k) {
    for (int64_t j = 0; j < kNR; ++j) dst[k * kNR + j] = rows[j * ld + k];
  }
}

void F32PanelsA::pack(float* dst, int64_t i0, int64_t ni, int64_t k0, int64_t nk) const {
  if (transposed_) {
    // op(A)[i, k] = a[k * lda + i]: row k of the stored matrix holds the ni values of every panel
    // at that k. Reading it as one contiguous run (instead of 6 values per panel and row, rows far
    // apart) lets the prefetchers stream it: this pack was ~8% of a training step when A was large
    // (dyᵀ of the LM head).
    const int64_t panels = (ni + kMR - 1) / kMR;
    if (ni % kMR != 0) std::memset(dst + (panels - 1) * nk * kMR, 0, size_t(nk * kMR) * sizeof(float));
    for (int64_t k = 0; k < nk; ++k) {
      const float* src = a_ + (k0 + k) * lda_ + i0;
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t rows = std::min(kMR, ni - p * kMR);
        float* d = dst + p * nk * kMR + k * kMR;
        if (rows == kMR) {
          _mm_storeu_ps(d, _mm_loadu_ps(src + p * kMR));
          _mm_storeh_pi(reinterpret_cast<__m64*>(d + 4), _mm_loadu_ps(src + p * kMR + 2));  // values 4, 5
        } else {
          for (int64_t i = 0; i < rows; ++i) d[i] = src[p * kMR + i];
        }
      }
    }
    return;
  }
  for (int64_t p = 0; p < ni; p += kMR, dst += nk * kMR) {
    const int64_t rows = std::min(kMR, ni - p);
    const float* src = a_ + (i0 + p) * lda_ + k0;  // op(A)[i, k] = a[i * lda + k]: `rows` streams
    if (rows == kMR) {
      int64_t k = 0;
      for (; k + 8 <= nk; k += 8) pack6x8(dst + k * kMR, src + k, lda_);
      for (; k < nk; ++k) {
        for (int64_t i = 0; i < kMR; ++i) dst[k * kMR + i] = src[i * lda_ + k];
      }
    } else {
      std::memset(dst, 0, size_t(nk * kMR) * sizeof(float));
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t k = 0; k < nk; ++k) dst[k * kMR + i] = src[i * lda_ + k];
      }
    }
  }
}

float* thread_scratch(int slot, int64_t n) {
  struct Buffer {
    std::unique_ptr<float, decltype(&std::free)> data{nullptr, &std::free};
    int64_t capacity = 0;
  };
  thread_local Buffer buffers[4];
  Buffer& buf = buffers[slot];
  if (buf.capacity < n) {
    const size_t bytes = (size_t(n) * sizeof(float) + 63) / 64 * 64;
    buf.data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    buf.capacity = n;
  }
  return buf.data.get();
}

void gemm_blocked(float* c, int64_t ldc, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end,
                  int64_t K, const APanelSource& a, const BPanelSource& b, bool accumulate) {
  if (K == 0) {
    if (!accumulate) {
      for (int64_t m = m_begin; m < m_end; ++m) std::fill(c + m * ldc + n_begin, c + m * ldc + n_end, 0.0f);
    }
    return;
  }
  const bool wide = kernel_path() == KernelPath::kAvx512;
  float* bbuf = thread_scratch(0, kKC * kNC);
  float* abuf = thread_scratch(1, kMC * kKC);
  for (int64_t jc = n_begin; jc < n_end; jc += kNC) {
    const int64_t nc = std::min(kNC, n_end - jc);
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      const bool add = accumulate || pc > 0;
      b.pack(bbuf, pc, kc, jc, nc);
      for (int64_t ic = m_begin; ic < m_end; ic += kMC) {
        const int64_t mc = std::min(kMC, m_end - ic);
        a.pack(abuf, ic, mc, pc, kc);
        // With AVX-512, full 12 x 32 blocks of tiles go to the wide kernel (same sums, same
        // order); the rest of each 32-column strip falls back to 6 x 16 tiles.
        for (int64_t jr = 0; jr < nc;) {
          const int64_t jw = wide && jr + 2 * kNR <= nc ? 2 * kNR : kNR;
          for (int64_t ir = 0; ir < mc;) {
            float* ct = c + (ic + ir) * ldc + jc + jr;
            if (jw == 2 * kNR && ir + 2 * kMR <= mc) {
              avx512::micro_kernel_12x32(kc, abuf + ir * kc, abuf + (ir + kMR) * kc, bbuf + jr * kc,
                                         bbuf + (jr + kNR) * kc, ct, ldc, add);
              ir += 2 * kMR;
              continue;
            }
            const int64_t mr = std::min(kMR, mc - ir);
            for (int64_t j = jr; j < jr + jw; j += kNR) {
              const int64_t nr = std::min(kNR, nc - j);
              float* cj = c + (ic + ir) * ldc + jc + j;
              if (mr == kMR && nr == kNR) {
                micro_kernel(kc, abuf + ir * kc, bbuf + j * kc, cj, ldc, add);
              } else {
                edge_tile(kc, abuf + ir * kc, bbuf + j * kc, cj, ldc, mr, nr, add);
              }
            }
            ir += kMR;
          }
          jr += jw;
        }
      }
    }
  }
}

void gemm(float* c, int64_t ldc, const float* a, int64_t lda, Op op_a, const float* b, int64_t ldb, Op op_b,
          int64_t M, int64_t N, int64_t K, bool accumulate) {
  const F32PanelsA pa(a, lda, op_a == Op::T);
  const F32B pb(b, ldb, op_b);
  // Threads own whole micro-tile rows or columns of C (the longer side), so no packed panel is
  // shared and no sum crosses threads.
  if (M >= N) {
    const int64_t tiles = (M + kMR - 1) / kMR;
    parallel_chunks(tiles, [&](int64_t t0, int64_t t1) {
      gemm_blocked(c, ldc, t0 * kMR, std::min(M, t1 * kMR), 0, N, K, pa, pb, accumulate);
    });
  } else {
    const int64_t tiles = (N + kNR - 1) / kNR;
    parallel_chunks(tiles, [&](int64_t t0, int64_t t1) {
      gemm_blocked(c, ldc, 0, M, t0 * kNR, std::min(N, t1 * kNR), K, pa, pb, accumulate);
    });
  }
}

}  // namespace dsv3::kernels::avx2

#pragma GCC pop_options
