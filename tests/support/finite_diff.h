// Central finite differences for backward checks (style rule 8).
//
// Everything under test is f32, so the difference quotient carries two errors: truncation
// h²·|f'''|/6 and the rounding of the loss, ~ε_f32·|terms|/h. Each test states its h and the
// tolerance that follows from these two for its magnitudes.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"

namespace dsv3::testing {

// (f(x + h·e_i) − f(x − h·e_i)) / (actual step), x restored. f returns NaN when the
// perturbation crossed a discontinuity (e.g. changed a routing decision).
template <typename F>
double central_difference(float* x, int64_t i, float h, F&& f) {
  const float x0 = x[i];
  const float xp = x0 + h, xm = x0 - h;
  x[i] = xp;
  const double fp = f();
  x[i] = xm;
  const double fm = f();
  x[i] = x0;
  return (fp - fm) / (double(xp) - double(xm));
}

// Checks analytic gradient g against central differences at entries idx of x:
// |fd − g| <= atol + rtol·|g|. Entries where f reports a discontinuity are skipped (and counted).
struct FdResult {
  int64_t checked = 0, skipped = 0;
  double max_err = 0.0;
};
template <typename F>
FdResult check_gradient(const std::string& what, float* x, const float* g, const std::vector<int64_t>& idx, float h,
                        double atol, double rtol, F&& f) {
  FdResult r;
  for (int64_t i : idx) {
    const double fd = central_difference(x, i, h, f);
    if (std::isnan(fd)) {
      ++r.skipped;
      continue;
    }
    ++r.checked;
    const double err = std::fabs(fd - double(g[i]));
    r.max_err = std::max(r.max_err, err);
    EXPECT_LE(err, atol + rtol * std::fabs(double(g[i])))
        << what << "[" << i << "]: finite difference " << fd << ", backward " << g[i];
  }
  return r;
}

inline std::vector<int64_t> all_indices(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = i;
  return v;
}

// k distinct-ish random indices in [0, n) (all of them when n <= k).
inline std::vector<int64_t> some_indices(int64_t n, int64_t k, uint64_t seed) {
  if (n <= k) return all_indices(n);
  Rng rng(seed, 3);
  std::vector<int64_t> v;
  for (int64_t j = 0; j < k; ++j) v.push_back(int64_t(rng.next_bits() % uint64_t(n)));
  return v;
}

inline std::vector<float> random_vector(int64_t n, uint64_t seed, float scale = 1.0f, float center = 0.0f) {
  Rng rng(seed, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = center + scale * rng.next_normal();
  return v;
}

// Σ r_i·out_i in double: the scalar objective whose gradient w.r.t. out is r.
inline double weighted_sum(const float* out, const float* r, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(out[i]) * double(r[i]);
  return s;
}

}  // namespace dsv3::testing
