// Portable reference matmul (temporary single implementation until the optimized kernels land).
#include "kernels/matmul.h"

#include <cstring>

#include "core/check.h"
#include "core/numeric.h"
#include "core/parallel_for.h"

namespace dsv3::kernels {

int64_t WeightMatrix::bytes() const {
  int64_t b = rows * cols * int64_t(dtype_size(dtype));
  if (dtype == DType::F8_E4M3) b += ((rows + kFp8Block - 1) / kFp8Block) * scale_cols() * 4;
  return b;
}

WeightMatrix WeightMatrix::row_slice(int64_t r0, int64_t n) const {
  WeightMatrix v = *this;
  v.data = static_cast<const uint8_t*>(data) + r0 * cols * int64_t(dtype_size(dtype));
  v.rows = n;
  v.scale_row_offset = scale_row_offset + r0;
  return v;
}

float WeightMatrix::at(int64_t r, int64_t c) const {
  const int64_t i = r * cols + c;
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::F8_E4M3: {
      float s = scale_inv[((scale_row_offset + r) / kFp8Block) * scale_cols() + c / kFp8Block];
      return e4m3_to_f32(static_cast<const uint8_t*>(data)[i]) * s;
    }
    default: DSV3_FAIL("unsupported weight dtype {}", dtype_name(dtype));
  }
}

void dequantize_row(float* out, const WeightMatrix& w, int64_t r) {
  for (int64_t c = 0; c < w.cols; ++c) out[c] = w.at(r, c);
}

void matmul_ref(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  parallel_for(w.rows, [&](int64_t n) {
    for (int64_t t = 0; t < T; ++t) {
      double acc = 0.0;
      for (int64_t k = 0; k < w.cols; ++k) acc += double(x[t * ldx + k]) * double(w.at(n, k));
      y[t * ldy + n] = float(acc);
    }
  });
}

void matmul_t_ref(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  parallel_for(w.cols, [&](int64_t c) {
    for (int64_t t = 0; t < T; ++t) {
      double acc = 0.0;
      for (int64_t r = 0; r < w.rows; ++r) acc += double(x[t * ldx + r]) * double(w.at(r, c));
      y[t * ldy + c] = float(acc);
    }
  });
}

void matmul(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  matmul_ref(y, ldy, x, ldx, w, T);
}

void matmul_t(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  matmul_t_ref(y, ldy, x, ldx, w, T);
}

}  // namespace dsv3::kernels
