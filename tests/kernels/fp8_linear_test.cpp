// The Linear recipe: FP8 and BF16 forward/dgrad/wgrad against FP64, the FP8 path equal to the
// composition of the kernels with the tiling the spec assigns each GEMM, the BF16 GEMM against its
// twin, no allocation after the first call, BF16 output rounding.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/numeric.h"
#include "kernels/fp8_linear.h"
#include "kernels/fp8_test_util.h"

namespace dsv3::kernels {
namespace {

using testing::calc_diff;
using testing::matmul_f64;
using testing::random_matrix;
using testing::transpose;

struct Problem {
  int64_t T, N, K;
  std::vector<float> x, w, dy, dw0;
  std::vector<double> y_ref, dx_ref, dw_ref;  // dw_ref excludes dw0
};

Problem make_problem(int64_t T, int64_t N, int64_t K, int64_t outlier_every) {
  Problem p{T, N, K, random_matrix(T, K, 101, outlier_every), random_matrix(N, K, 102, outlier_every),
            random_matrix(T, N, 103, outlier_every), random_matrix(N, K, 104), {}, {}, {}};
  p.y_ref = matmul_f64(p.x.data(), p.w.data(), T, N, K, true);
  p.dx_ref = matmul_f64(p.dy.data(), p.w.data(), T, K, N, false);
  const auto dyt = transpose(p.dy, T, N);
  p.dw_ref = matmul_f64(dyt.data(), p.x.data(), N, K, T, false);
  return p;
}

struct Result {
  std::vector<float> y, dx, dw;  // dw with dw0 subtracted again
};

Result run(const Problem& p, const LinearRecipe& recipe) {
  LinearWeight wc;
  LinearSaved saved;
  LinearScratch scratch;
  Result r{std::vector<float>(size_t(p.T * p.N)), std::vector<float>(size_t(p.T * p.K)), p.dw0};
  linear_prepare_weight(wc, p.w.data(), p.N, p.K, recipe);
  linear_forward(r.y.data(), saved, p.x.data(), p.T, wc, recipe);
  linear_backward(r.dx.data(), r.dw.data(), p.dy.data(), p.T, saved, wc, scratch, recipe);
  for (size_t i = 0; i < r.dw.size(); ++i) r.dw[i] -= p.dw0[i];  // exact enough: |dw0| ~ |dw| / √T
  return r;
}

// FP8 recipe vs FP64 of the unquantized operands: DeepGEMM's calc_diff < 1e-3 for all three GEMMs
// (inputs with x100 outliers, edge shapes). Wgrad includes the re-tiling of the FP8 cache of x.
TEST(Fp8Linear, RecipeAgainstF64) {
  for (auto [T, N, K] : {std::tuple<int64_t, int64_t, int64_t>{256, 384, 256}, {200, 130, 300}, {129, 64, 129}}) {
    const Problem p = make_problem(T, N, K, 1000);
    const Result r = run(p, {});
    SCOPED_TRACE(::testing::Message() << T << "x" << N << "x" << K);
    EXPECT_LT(calc_diff(r.y.data(), p.y_ref.data(), T * N), 1e-3);
    EXPECT_LT(calc_diff(r.dx.data(), p.dx_ref.data(), T * K), 1e-3);
    // dw - dw0 carries the f32 rounding of the accumulation into dw0 (relative ~2^-24 of dw0):
    // negligible against 1e-3.
    EXPECT_LT(calc_diff(r.dw.data(), p.dw_ref.data(), N * K), 1e-3);
  }
}

TEST(Fp8Linear, PowerOfTwoScalesRecipe) {
  const Problem p = make_problem(256, 256, 384, 0);
  const Result r = run(p, {.scale_fmt = ScaleFmt::kUe8m0});
  EXPECT_LT(calc_diff(r.y.data(), p.y_ref.data(), 256 * 256), 1e-3);
  EXPECT_LT(calc_diff(r.dx.data(), p.dx_ref.data(), 256 * 384), 1e-3);
  EXPECT_LT(calc_diff(r.dw.data(), p.dw_ref.data(), 256 * 384), 1e-3);
}

// The recipe is exactly the kernels with the spec's tilings (training §3.3), bit for bit:
// Fprop x 1x128 · W 128x128; Dgrad dy 1x128 · W (same blocks); Wgrad dyᵀ 128x1 (from f32 dy) ·
// x re-tiled 128x1 from its 1x128 cache.
TEST(Fp8Linear, IsTheKernelsWithTheSpecTilings) {
  const int64_t T = 150, N = 70, K = 200;
  const Problem p = make_problem(T, N, K, 500);
  const Result r = run(p, {});

  std::vector<uint8_t> wq(size_t(N * K)), wqt(size_t(N * K)), xq(size_t(T * K)), dyq(size_t(T * N)),
      dytq(size_t(T * N)), xq2(size_t(T * K));
  std::vector<float> ws(size_t(fp8_groups(N) * fp8_groups(K))), xs(size_t(T * fp8_groups(K))),
      dys(size_t(T * fp8_groups(N))), dyts(size_t(N * fp8_groups(T))), xs2(size_t(fp8_groups(T) * K));
  quantize_128x128(wq.data(), ws.data(), p.w.data(), N, K, ScaleFmt::kF32);
  transpose_codes(wqt.data(), wq.data(), N, K);
  const Fp8WeightView wv{wq.data(), wqt.data(), ws.data(), N, K};
  quantize_1x128(xq.data(), xs.data(), p.x.data(), T, K, K, ScaleFmt::kF32);
  std::vector<float> y(size_t(T * N)), dx(size_t(T * K)), dw = p.dw0;
  fp8_fprop(y.data(), {xq.data(), xs.data(), T, K}, wv);
  quantize_1x128(dyq.data(), dys.data(), p.dy.data(), T, N, N, ScaleFmt::kF32);
  fp8_dgrad(dx.data(), {dyq.data(), dys.data(), T, N}, wv);
  quantize_128x1_transposed(dytq.data(), dyts.data(), p.dy.data(), T, N, N, ScaleFmt::kF32);
  requantize_1x128_to_128x1(xq2.data(), xs2.data(), xq.data(), xs.data(), T, K, ScaleFmt::kF32);
  fp8_wgrad(dw.data(), {dytq.data(), dyts.data(), N, T}, col_tiles_rhs(xq2.data(), xs2.data(), T, K));
  for (size_t i = 0; i < dw.size(); ++i) dw[i] -= p.dw0[i];

  EXPECT_EQ(0, std::memcmp(y.data(), r.y.data(), y.size() * 4));
  EXPECT_EQ(0, std::memcmp(dx.data(), r.dx.data(), dx.size() * 4));
  EXPECT_EQ(0, std::memcmp(dw.data(), r.dw.data(), dw.size() * 4));
}

// BF16 twin vs FP64: each operand rounded once (relative error <= 2^-9, rms 2^-9/√3 ≈ 1.1e-3), so a
// product is off by ~1.6e-3 rms and calc_diff ≈ (1.6e-3)² / 2 ≈ 1.3e-6; f32 accumulation adds
// nothing visible. Bound 1e-5 (~8x margin).
TEST(Bf16Linear, TwinAgainstF64) {
  const Problem p = make_problem(200, 130, 300, 0);
  const Result r = run(p, {.precision = LinearPrecision::kBf16});
  EXPECT_LT(calc_diff(r.y.data(), p.y_ref.data(), 200 * 130), 1e-5);
  EXPECT_LT(calc_diff(r.dx.data(), p.dx_ref.data(), 200 * 300), 1e-5);
  EXPECT_LT(calc_diff(r.dw.data(), p.dw_ref.data(), 130 * 300), 1e-5);
  // And FP8 sits within DeepGEMM's threshold of BF16.
  const Result f = run(p, {});
  EXPECT_LT(calc_diff(f.y.data(), r.y.data(), 200 * 130), 1e-3);
}

TEST(Bf16Linear, GemmMatchesTwinBitwise) {
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {7, 17, 129}, {49, 65, 300}, {100, 130, 257}}) {
    const auto a = random_matrix(M, K, 111), b = random_matrix(K, N, 112), c0 = random_matrix(M, N, 113);
    for (bool accumulate : {false, true}) {
      std::vector<float> fast = c0, twin = c0;
      bf16_gemm(fast.data(), N, a.data(), b.data(), M, N, K, accumulate);
      bf16_gemm_ref(twin.data(), N, a.data(), b.data(), M, N, K, accumulate);
      ASSERT_EQ(0, std::memcmp(fast.data(), twin.data(), fast.size() * 4)) << M << "x" << N << "x" << K;
    }
  }
}

// Buffers grow on the first call and are reused afterwards (also for a smaller T).
TEST(Linear, NoAllocationAfterFirstCall) {
  for (LinearPrecision prec : {LinearPrecision::kFp8, LinearPrecision::kBf16}) {
    const LinearRecipe recipe{.precision = prec};
    const Problem p = make_problem(160, 96, 200, 0);
    LinearWeight wc;
    LinearSaved saved;
    LinearScratch scratch;
    std::vector<float> y(size_t(160 * 96)), dx(size_t(160 * 200)), dw(size_t(96 * 200));
    auto step = [&](int64_t T) {
      linear_prepare_weight(wc, p.w.data(), 96, 200, recipe);
      linear_forward(y.data(), saved, p.x.data(), T, wc, recipe);
      linear_backward(dx.data(), dw.data(), p.dy.data(), T, saved, wc, scratch, recipe);
    };
    auto pointers = [&] {
      return std::vector<const void*>{wc.q.data(), wc.qt.data(), wc.s.data(), wc.w.data(), wc.wt.data(),
                                      saved.q.data(), saved.s.data(), saved.x16.data(), scratch.dy_q.data(),
                                      scratch.dyt_q.data(), scratch.x_q.data(), scratch.dy_s.data(),
                                      scratch.dyt_s.data(), scratch.x_s.data(), scratch.dy16.data(),
                                      scratch.dyt16.data()};
    };
    step(160);
    const auto first = pointers();
    step(160);
    step(100);
    EXPECT_EQ(first, pointers());
  }
}

TEST(Linear, Bf16OutputsAndSkippedDgrad) {
  const Problem p = make_problem(64, 128, 128, 0);
  for (LinearPrecision prec : {LinearPrecision::kFp8, LinearPrecision::kBf16}) {
    LinearWeight wc;
    LinearSaved saved;
    LinearScratch scratch;
    std::vector<float> y(size_t(64 * 128)), y16(y.size()), dw(size_t(128 * 128), 0.0f), dw2 = dw;
    linear_prepare_weight(wc, p.w.data(), 128, 128, {.precision = prec});
    linear_forward(y.data(), saved, p.x.data(), 64, wc, {.precision = prec});
    linear_forward(y16.data(), saved, p.x.data(), 64, wc, {.precision = prec, .bf16_outputs = true});
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y16[i], round_to_bf16(y[i]));
    // dx = nullptr: only the weight gradient, identical to the one computed with dx.
    std::vector<float> dx(size_t(64 * 128));
    linear_backward(nullptr, dw.data(), p.dy.data(), 64, saved, wc, scratch, {.precision = prec});
    linear_backward(dx.data(), dw2.data(), p.dy.data(), 64, saved, wc, scratch, {.precision = prec});
    EXPECT_EQ(dw, dw2);
  }
}

}  // namespace
}  // namespace dsv3::kernels
