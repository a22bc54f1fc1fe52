// The exponential and row primitives of exp_rows.h on every kernel path, against std::exp in
// double.
//
// exp_f32: error in units of the f32 ulp of the exact result, over 2^21 arguments evenly spread
// on [-87.3, 88.3] plus the range ends. The AVX2 polynomial is specified (exp_rows.h) at < 2 ulp
// (Cephes' peak 1.3e-7 relative ≈ 1.1 ulp, plus the final product's rounding); std::exp at < 1.
//
// Row primitives, lengths around the vector width and offset (misaligned) pointers. Each element
// is exp(a) with a = scale·x − shift rounded at most twice (the portable path rounds scale·x, then
// the difference; the FMA path only the difference): an absolute argument error up to
// (|scale·x| + |a|)·2^-24, which exp turns into the same relative error, plus 2 ulp of exp and 1 of
// the multiplication by `mul`:  rel ≤ 3·2^-23 + (|scale·x| + |a|)·2^-24.  Sums add n roundings in
// double.
#include "kernels/exp_rows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/kernel_paths.h"
#include "kernels/weights_fixture.h"

namespace dsv3::kernels {
namespace {

// Distance of y from the exact exp(x) in ulps of the f32 format at exp(x).
double ulp_error(float y, float x) {
  const double e = std::exp(double(x));
  const double ulp = std::ldexp(1.0, std::ilogb(e) - 23);
  return std::fabs(double(y) - e) / ulp;
}

TEST(ExpRows, ExpWithinTwoUlpOverTheNormalRange) {
  testing::for_each_path([](KernelPath path) {
    const double bound = path != KernelPath::kPortable ? 2.0 : 1.0;
    const int64_t n = int64_t(1) << 21;
    const double lo = -87.3, hi = 88.3;
    double worst = 0.0;
    float worst_x = 0.0f;
    for (int64_t i = 0; i <= n; ++i) {
      const float x = float(lo + (hi - lo) * double(i) / double(n));
      const double err = ulp_error(exp_f32(x), x);
      if (err > worst) worst = err, worst_x = x;
    }
    EXPECT_LT(worst, bound) << "worst at x = " << worst_x;
    for (float x : {0.0f, -1e-30f, 1e-30f, 1.0f, -1.0f, 0.5f, 88.3762f, -87.3365f})
      EXPECT_LT(ulp_error(exp_f32(x), x), bound) << "x = " << x;
  });
}

TEST(ExpRows, ExpRangeEndsAndSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  testing::for_each_path([&](KernelPath) {
    EXPECT_EQ(exp_f32(-inf), 0.0f);
    EXPECT_EQ(exp_f32(inf), inf);
    EXPECT_EQ(exp_f32(89.0f), inf);
    EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
    // Below FLT_MIN the result may flush to 0: absolute error under 2^-126.
    for (float x : {-87.5f, -90.0f, -103.0f, -200.0f}) {
      EXPECT_GE(exp_f32(x), 0.0f);
      EXPECT_LT(std::fabs(double(exp_f32(x)) - std::exp(double(x))), 0x1p-126) << "x = " << x;
    }
  });
}

TEST(ExpRows, RowPrimitivesMatchDoubleReference) {
  const float scale = 0.37f, mul = -1.75f;
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 127, 128, 129}) {
    for (int64_t offset : {0, 1}) {
      auto buf = testing::random_floats(n + offset, uint64_t(100 + n), 10.0f);  // arguments down to about -20
      const float* x = buf.data() + offset;
      SCOPED_TRACE("n = " + std::to_string(n) + ", offset = " + std::to_string(offset));
      testing::for_each_path([&](KernelPath) {
        float mx = x[0];
        for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
        EXPECT_EQ(row_max(x, n), mx);
        const float shift = scale * mx;
        double sum = 0.0, sum_bound = 0.0;
        std::vector<float> out(size_t(n + offset), 0.5f), acc = out;
        row_exp(out.data() + offset, x, n, scale, shift, mul, false);
        row_exp(acc.data() + offset, x, n, scale, shift, mul, true);
        for (int64_t i = 0; i < n; ++i) {
          const double a = double(scale) * x[i] - shift;
          const double e = std::exp(a);
          const double tol = (3.0 * 0x1p-23 + (std::fabs(double(scale) * x[i]) + std::fabs(a)) * 0x1p-24) * e;
          sum += e;
          sum_bound += tol;
          EXPECT_NEAR(out[size_t(offset + i)], mul * e, std::fabs(mul) * tol) << "i = " << i;
          // The accumulating form adds one more rounding of a result of magnitude <= 0.5 + |mul·e|.
          EXPECT_NEAR(acc[size_t(offset + i)], 0.5 + mul * e,
                      std::fabs(mul) * tol + 0x1p-24 * (0.5 + std::fabs(mul * e)))
              << "i = " << i;
        }
        EXPECT_NEAR(row_sum_exp(x, n, scale, shift), sum, sum_bound + double(n) * 0x1p-52 * sum);
        for (int64_t i = 0; i < offset; ++i) EXPECT_EQ(out[size_t(i)], 0.5f);  // nothing before the row
      });
    }
  }
}

}  // namespace
}  // namespace dsv3::kernels
