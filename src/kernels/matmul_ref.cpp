// The slow twins of the weight products (matmul.h): plain loops in double precision over the
// exact weight values (an FP8 weight is code value times block scale, not rounded to f32), so the
// only rounding left is the final cast of each output to f32. They are the specification the fast
// paths are tested against.
#include "core/check.h"
#include "core/numeric.h"
#include "kernels/matmul.h"

namespace dsv3::kernels {
namespace {

double exact_weight(const WeightMatrix& w, int64_t r, int64_t c) {
  const int64_t i = r * w.cols + c;
  switch (w.dtype) {
    case DType::F32: return static_cast<const float*>(w.data)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::F8_E4M3: {
      const float s = w.scale_inv[((w.scale_row_offset + r) / kFp8Block) * w.scale_cols() + c / kFp8Block];
      return double(e4m3_to_f32(static_cast<const uint8_t*>(w.data)[i])) * double(s);
    }
    default: DSV3_FAIL("weight dtype {} is not supported by matmul", dtype_name(w.dtype));
  }
}

}  // namespace

void matmul_ref(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t n = 0; n < w.rows; ++n) {
      double s = 0.0;
      for (int64_t k = 0; k < w.cols; ++k) s += double(x[t * ldx + k]) * exact_weight(w, n, k);
      y[t * ldy + n] = float(s);
    }
  }
}

void matmul_t_ref(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t c = 0; c < w.cols; ++c) {
      double s = 0.0;
      for (int64_t r = 0; r < w.rows; ++r) s += double(x[t * ldx + r]) * exact_weight(w, r, c);
      y[t * ldy + c] = float(s);
    }
  }
}

}  // namespace dsv3::kernels
