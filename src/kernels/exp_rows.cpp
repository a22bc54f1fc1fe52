#include "kernels/exp_rows.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/avx2.h"
#include "kernels/dispatch.h"

namespace dsv3::kernels {

float row_max(const float* x, int64_t n) {
  DSV3_CHECK(n >= 1, "row_max of an empty row");
  if (avx2_kernels()) return avx2::row_max(x, n);
  return *std::max_element(x, x + n);
}

double row_sum_exp(const float* x, int64_t n, float scale, float shift) {
  // The AVX2 path pads the row tail with -inf, which only a positive scale sends to exp = 0.
  DSV3_CHECK(scale > 0.0f, "row_sum_exp: scale {} must be positive", scale);
  if (avx2_kernels()) return avx2::row_sum_exp(x, n, scale, shift);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(std::exp(scale * x[i] - shift));
  return sum;
}

void row_exp(float* out, const float* x, int64_t n, float scale, float shift, float mul, bool accumulate) {
  if (avx2_kernels()) return avx2::row_exp(out, x, n, scale, shift, mul, accumulate);
  for (int64_t i = 0; i < n; ++i) {
    const float e = mul * std::exp(scale * x[i] - shift);
    out[i] = accumulate ? out[i] + e : e;
  }
}

float exp_f32(float x) {
  if (avx2_kernels()) return avx2::exp_f32(x);
  return std::exp(x);
}

}  // namespace dsv3::kernels
