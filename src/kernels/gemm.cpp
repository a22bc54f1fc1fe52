// Dispatch of the FP32 GEMM (gemm.h) and its portable path: threads own whole rows of C; a row is
// accumulated in a per-thread buffer, as axpy updates over k when B is (K, N) (contiguous rows,
// vectorizable) or as dot products when B is stored (N, K).
#include <algorithm>
#include <vector>

#include "core/check.h"
#include "core/parallel_for.h"
#include "kernels/avx2.h"
#include "kernels/dispatch.h"
#include "kernels/dot8.h"
#include "kernels/gemm.h"

namespace dsv3::kernels {
namespace {

void gemm_portable(float* c, int64_t ldc, const float* a, int64_t lda, Op op_a, const float* b, int64_t ldb,
                   Op op_b, int64_t M, int64_t N, int64_t K, bool accumulate) {
  parallel_chunks(M, [&](int64_t m0, int64_t m1) {
    // Per-thread row buffers, grown once: the training step calls this with a few fixed shapes.
    thread_local std::vector<float> acc, arow;
    acc.resize(size_t(N));
    arow.resize(size_t(K));
    for (int64_t m = m0; m < m1; ++m) {
      for (int64_t k = 0; k < K; ++k) arow[size_t(k)] = op_a == Op::N ? a[m * lda + k] : a[k * lda + m];
      if (op_b == Op::N) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t k = 0; k < K; ++k) {
          const float av = arow[size_t(k)];
          const float* brow = b + k * ldb;
          float* out = acc.data();
          for (int64_t n = 0; n < N; ++n) out[n] += av * brow[n];
        }
      } else {
        for (int64_t n = 0; n < N; ++n) acc[size_t(n)] = dot8(arow.data(), b + n * ldb, K);
      }
      float* crow = c + m * ldc;
      for (int64_t n = 0; n < N; ++n) crow[n] = accumulate ? crow[n] + acc[size_t(n)] : acc[size_t(n)];
    }
  });
}

}  // namespace

void gemm(float* c, int64_t ldc, const float* a, int64_t lda, Op op_a, const float* b, int64_t ldb, Op op_b,
          int64_t M, int64_t N, int64_t K, bool accumulate) {
  DSV3_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size M={} N={} K={}", M, N, K);
  DSV3_CHECK(ldc >= N && lda >= (op_a == Op::N ? K : M) && ldb >= (op_b == Op::N ? N : K),
             "gemm: strides lda={} ldb={} ldc={} too small for M={} N={} K={}", lda, ldb, ldc, M, N, K);
  if (M == 0 || N == 0) return;
  if (avx2_kernels()) return avx2::gemm(c, ldc, a, lda, op_a, b, ldb, op_b, M, N, K, accumulate);
  gemm_portable(c, ldc, a, lda, op_a, b, ldb, op_b, M, N, K, accumulate);
}

void gemm_ref(float* c, int64_t ldc, const float* a, int64_t lda, Op op_a, const float* b, int64_t ldb, Op op_b,
              int64_t M, int64_t N, int64_t K, bool accumulate) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double s = accumulate ? double(c[m * ldc + n]) : 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double av = op_a == Op::N ? a[m * lda + k] : a[k * lda + m];
        const double bv = op_b == Op::N ? b[k * ldb + n] : b[n * ldb + k];
        s += av * bv;
      }
      c[m * ldc + n] = float(s);
    }
  }
}

}  // namespace dsv3::kernels
