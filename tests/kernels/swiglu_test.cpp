// swiglu_forward / swiglu_backward (activation.h) on every kernel path against the formulas in
// double, over lengths around the vector width, an offset (misaligned) start, and one length above
// the threshold where threads split the elements (also checked for equal bits on 1 and 2 threads).
//
// Tolerances. σ = 1/(1 + exp(−g)) carries the exp error (2 ulp on the AVX2 path, 1 on the portable
// one) plus two roundings: relative ε_σ ≤ 4·2^-24. silu·u adds two more roundings:
//   forward: |Δ| ≤ 8·2^-24·|silu(g)·u|.
// Every term of σ·(1 + g·(1 − σ)) is bounded by σ·(1 + |g|) (0 < σ < 1) and goes through at most
// 8 roundings or ε_σ-sized errors; (1 − σ) has absolute, not relative, error ε_σ:
//   dgate: |Δ| ≤ 16·2^-24·|d·u|·σ·(1 + |g|) + 2^-24·|result|   (the += adds one rounding)
//   dup:   |Δ| ≤ 8·2^-24·|d·g·σ| + 2^-24·|result|.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/parallel_for.h"
#include "kernels/activation.h"
#include "kernels/kernel_paths.h"
#include "kernels/weights_fixture.h"

namespace dsv3::kernels {
namespace {

void check_length(int64_t n, int64_t offset) {
  SCOPED_TRACE("n = " + std::to_string(n) + ", offset = " + std::to_string(offset));
  const auto g = testing::random_floats(n + offset, uint64_t(3 * n + 1), 4.0f);
  const auto u = testing::random_floats(n + offset, uint64_t(3 * n + 2));
  const auto d = testing::random_floats(n + offset, uint64_t(3 * n + 3));
  testing::for_each_path([&](KernelPath) {
    std::vector<float> out(size_t(n + offset), -7.0f), dg(size_t(n + offset), 0.5f), du(size_t(n + offset), -0.5f);
    swiglu_forward(out.data() + offset, g.data() + offset, u.data() + offset, n);
    swiglu_backward(dg.data() + offset, du.data() + offset, d.data() + offset, g.data() + offset, u.data() + offset, n);
    int64_t bad = 0;
    for (int64_t i = offset; i < n + offset && bad < 5; ++i) {
      const double gi = g[size_t(i)], ui = u[size_t(i)], di = d[size_t(i)];
      const double s = 1.0 / (1.0 + std::exp(-gi));
      const double f = gi * s * ui;
      const double eg = 0.5 + di * ui * s * (1.0 + gi * (1.0 - s)), eu = -0.5 + di * gi * s;
      const double tf = 8 * 0x1p-24 * std::fabs(f);
      const double tg = 16 * 0x1p-24 * std::fabs(di * ui) * s * (1.0 + std::fabs(gi)) + 0x1p-24 * std::fabs(eg);
      const double tu = 8 * 0x1p-24 * std::fabs(di * gi * s) + 0x1p-24 * std::fabs(eu);
      const bool ok = std::fabs(out[size_t(i)] - f) <= tf && std::fabs(dg[size_t(i)] - eg) <= tg &&
                      std::fabs(du[size_t(i)] - eu) <= tu;
      if (!ok) {
        ++bad;
        ADD_FAILURE() << "i = " << i << " g = " << gi << ": out " << out[size_t(i)] << " vs " << f << ", dgate "
                      << dg[size_t(i)] << " vs " << eg << ", dup " << du[size_t(i)] << " vs " << eu;
      }
    }
    for (int64_t i = 0; i < offset; ++i) {  // nothing before the range is written
      EXPECT_EQ(out[size_t(i)], -7.0f);
      EXPECT_EQ(dg[size_t(i)], 0.5f);
    }
  });
}

TEST(Swiglu, MatchesDoubleFormulasOverEdgeLengths) {
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 127, 128, 129})
    for (int64_t offset : {0, 1}) check_length(n, offset);
  check_length((int64_t(1) << 15) + 13, 1);  // split across threads
}

TEST(Swiglu, SameBitsForOneAndTwoThreads) {
  const int64_t n = (int64_t(1) << 16) + 5;  // chunk boundaries fall inside vectors
  const auto g = testing::random_floats(n, 41, 4.0f), u = testing::random_floats(n, 42), d = testing::random_floats(n, 43);
  testing::for_each_path([&](KernelPath) {
    auto run = [&](int threads) {
      const int saved = num_threads();
      set_num_threads(threads);
      std::vector<float> out(static_cast<size_t>(n)), dg(size_t(n), 0.0f), du(size_t(n), 0.0f);
      swiglu_forward(out.data(), g.data(), u.data(), n);
      swiglu_backward(dg.data(), du.data(), d.data(), g.data(), u.data(), n);
      set_num_threads(saved);
      out.insert(out.end(), dg.begin(), dg.end());
      out.insert(out.end(), du.begin(), du.end());
      return out;
    };
    EXPECT_EQ(run(1), run(2));
  });
}

}  // namespace
}  // namespace dsv3::kernels
