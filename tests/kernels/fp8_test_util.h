// Shared helpers of the FP8 tests: random operands, FP64 references and DeepGEMM's calc_diff.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/numeric.h"
#include "core/rng.h"

namespace dsv3::kernels::testing {

// DeepGEMM's metric, in FP64: 1 - 2·Σxy / Σ(x² + y²) (0 when both are all-zero). It equals
// ‖x - y‖² / (‖x‖² + ‖y‖²) exactly, so it is quadratic in the error: 1e-3 ~ 4.5% relative L2.
template <typename X, typename Y>
double calc_diff(const X* x, const Y* y, int64_t n) {
  double xy = 0, xx_yy = 0;
  for (int64_t i = 0; i < n; ++i) {
    xy += double(x[i]) * double(y[i]);
    xx_yy += double(x[i]) * double(x[i]) + double(y[i]) * double(y[i]);
  }
  return xx_yy == 0 ? 0.0 : 1.0 - 2.0 * xy / xx_yy;
}

// N(0,1) rounded to BF16 (DeepGEMM's tests draw BF16 randn); with `outliers`, one element in
// `outlier_every` (chosen by the RNG) is multiplied by 100.
inline std::vector<float> random_matrix(int64_t rows, int64_t cols, uint64_t seed, int64_t outlier_every = 0) {
  Rng rng(seed);
  std::vector<float> m(size_t(rows * cols));
  for (size_t i = 0; i < m.size(); ++i) {
    float v = rng.normal(i);
    if (outlier_every > 0 && rng.bits(i + (1ull << 40)) % uint64_t(outlier_every) == 0) v *= 100.0f;
    m[i] = round_to_bf16(v);
  }
  return m;
}

// C (M, N) = A (M, K) · B, with B given as (N, K) when b_is_nk (x · Wᵀ) or as (K, N), in double.
inline std::vector<double> matmul_f64(const float* A, const float* B, int64_t M, int64_t N, int64_t K,
                                      bool b_is_nk) {
  std::vector<double> C(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += double(A[m * K + k]) * double(b_is_nk ? B[n * K + k] : B[k * N + n]);
      C[size_t(m * N + n)] = acc;
    }
  return C;
}

inline std::vector<float> transpose(const std::vector<float>& a, int64_t rows, int64_t cols) {
  std::vector<float> t(a.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[size_t(c * rows + r)] = a[size_t(r * cols + c)];
  return t;
}

}  // namespace dsv3::kernels::testing
