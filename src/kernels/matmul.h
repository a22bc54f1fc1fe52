// Linear-layer products against weight matrices stored as checkpoints store them:
// W is row-major [rows = out features, cols = in features] and is applied as y = x · Wᵀ.
// Weights may be F32, BF16, F16 or F8_E4M3 with 128x128 block scales; they are converted to
// f32 inside the kernel (never as a dequantized copy in memory). Activations are f32.
//
// Every fast kernel here has a slow twin (`*_ref`, double accumulation) that is its spec.
//
// Contract of matmul / matmul_t / dequantize_row:
//   - Two regimes, chosen by T: decode (T <= 8) streams every weight once for all tokens and
//     allocates nothing; prefill (T > 8) widens weight tiles into per-thread packed panels (grown
//     once per thread) and reuses them across tokens.
//   - Threads (core/parallel_for.h) split the OUTPUT features statically; each output is summed in
//     an order fixed by K alone, so results are bit-identical for any thread count.
//   - Results agree with the `_ref` twins within (K + 5)·2^-24·Σ|x·w| (tests/kernels/matmul_test.cpp).
//   - E4M3 NaN codes (0x7F, 0xFF) never occur in valid checkpoints (the quantizers saturate) and
//     are outside the contract: the AVX2 path reads them as ±480·scale, the portable path as NaN.
//     All 254 finite codes decode identically on both paths.
//   - y must not alias x or the weights. Paths are chosen in kernels/dispatch.h.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace dsv3::kernels {

constexpr int64_t kFp8Block = 128;  // DeepSeek-V3 weight_block_size [128, 128]
constexpr int64_t kDecodeMaxTokens = 8;  // T <= this: the decode regime (see above)

struct WeightMatrix {
  const void* data = nullptr;  // (rows, cols), row-major, element type `dtype`; row 0 of this view
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  // F8_E4M3 only: multiplicative block scales ("weight_scale_inv") of the FULL stored matrix,
  // shape (ceil(stored_rows / 128), ceil(cols / 128)). W[r, c] = q[r, c] * scale[(r0 + r) / 128, c / 128].
  const float* scale_inv = nullptr;
  int64_t scale_row_offset = 0;  // r0: stored row index of this view's row 0 (row-slices of a matrix)

  bool empty() const { return data == nullptr; }
  int64_t scale_cols() const { return (cols + kFp8Block - 1) / kFp8Block; }
  int64_t bytes() const;  // weight bytes plus scale bytes this view reads
  // Rows [r0, r0 + n) of this matrix as a view (no copy).
  WeightMatrix row_slice(int64_t r0, int64_t n) const;
  float at(int64_t r, int64_t c) const;  // one element, dequantized (slow; tests and tools)
};

// y[T, w.rows] (row stride ldy) = x[T, w.cols] (row stride ldx) · Wᵀ. Overwrites y.
void matmul(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T);
inline void matmul(float* y, const float* x, const WeightMatrix& w, int64_t T) {
  matmul(y, w.rows, x, w.cols, w, T);
}
void matmul_ref(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T);

// y[T, w.cols] (row stride ldy) = x[T, w.rows] (row stride ldx) · W   (no transpose: used by the
// absorbed MLA path to fold kv_b_proj into the query). Overwrites y.
void matmul_t(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T);
void matmul_t_ref(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T);

// out[w.cols] = row r of W in f32 (embedding lookup).
void dequantize_row(float* out, const WeightMatrix& w, int64_t r);

}  // namespace dsv3::kernels
