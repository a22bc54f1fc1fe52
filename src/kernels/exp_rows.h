// Row primitives of softmax and cross-entropy built on a vectorized exponential: the max of a row,
// Σ exp(scale·x − shift) in double, and out (+)= mul·exp(scale·x − shift). Dispatched like the
// other kernels (dispatch.h): the portable path calls std::exp; the AVX2 path evaluates exp with
// the polynomial of exp_avx2.h on eight lanes at once.
//
// Accuracy of the AVX2 exponential (measured by tests/kernels/exp_rows_test.cpp over a dense sweep
// of [-87.3, 88.3]; 1.25 ulp at worst over 2^24 points): below 2 ulp of f32 (std::exp: below 1).
// Arguments below -87.3365 (results under FLT_MIN) give 0 (absolute error < 2^-126); above
// 88.3762 they give +inf (true values up to FLT_MAX are lost there; softmax and cross-entropy only
// pass arguments <= 0); NaN stays NaN. Sums run in a fixed lane order, so results depend only on
// the input and the kernel path, never on threads.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

// max_i x_i over n >= 1 values.
float row_max(const float* x, int64_t n);

// Σ_i exp(scale·x_i − shift), the exponentials in f32, summed in double. scale > 0.
double row_sum_exp(const float* x, int64_t n, float scale, float shift);

// out_i = mul·exp(scale·x_i − shift), or out_i += that when accumulate. out may equal x (not
// otherwise overlap it).
void row_exp(float* out, const float* x, int64_t n, float scale, float shift, float mul, bool accumulate);

// The exponential of the dispatched path on one value (what the row functions compute per element).
float exp_f32(float x);

}  // namespace dsv3::kernels
