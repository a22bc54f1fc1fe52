// FP8 GEMM: fast path == twin bit for bit, thread-count invariance, a derived bound against the
// FP64 product of the same quantized operands, DeepGEMM's calc_diff < 1e-3 against the
// unquantized product for every training tiling (with outliers), and the limited-accumulation
// emulation (hand cases and the promotion study's claim).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/parallel_for.h"
#include "kernels/fp8_gemm.h"
#include "kernels/kernel_paths.h"
#include "kernels/fp8_study.h"
#include "kernels/fp8_test_util.h"

namespace dsv3::kernels {
namespace {

using testing::calc_diff;
using testing::matmul_f64;
using testing::random_matrix;

// Quantized operands that own their storage.
struct Lhs {
  std::vector<uint8_t> q;
  std::vector<float> s;
  Fp8Lhs view;
};
Lhs lhs_1x128(const std::vector<float>& x, int64_t M, int64_t K) {
  Lhs l{std::vector<uint8_t>(size_t(M * K)), std::vector<float>(size_t(M * fp8_groups(K))), {}};
  quantize_1x128(l.q.data(), l.s.data(), x.data(), M, K, K, ScaleFmt::kF32);
  l.view = {l.q.data(), l.s.data(), M, K};
  return l;
}
// dy (T, N) -> dyᵀ in 128x1 tiles along T, the left operand of Wgrad.
Lhs lhs_128x1_transposed(const std::vector<float>& dy, int64_t T, int64_t N) {
  Lhs l{std::vector<uint8_t>(size_t(T * N)), std::vector<float>(size_t(N * fp8_groups(T))), {}};
  quantize_128x1_transposed(l.q.data(), l.s.data(), dy.data(), T, N, N, ScaleFmt::kF32);
  l.view = {l.q.data(), l.s.data(), N, T};
  return l;
}

struct Weight {
  std::vector<uint8_t> q, qt;
  std::vector<float> s;
  Fp8WeightView view;
};
Weight weight_128x128(const std::vector<float>& w, int64_t N, int64_t K) {
  Weight r{std::vector<uint8_t>(size_t(N * K)), std::vector<uint8_t>(size_t(N * K)),
           std::vector<float>(size_t(fp8_groups(N) * fp8_groups(K))), {}};
  quantize_128x128(r.q.data(), r.s.data(), w.data(), N, K, ScaleFmt::kF32);
  transpose_codes(r.qt.data(), r.q.data(), N, K);
  r.view = {r.q.data(), r.qt.data(), r.s.data(), N, K};
  return r;
}

struct Cols {
  std::vector<uint8_t> q;
  std::vector<float> s;
  Fp8Rhs view;
};
Cols rhs_128x1(const std::vector<float>& x, int64_t T, int64_t K) {
  Cols c{std::vector<uint8_t>(size_t(T * K)), std::vector<float>(size_t(fp8_groups(T) * K)), {}};
  quantize_128x1(c.q.data(), c.s.data(), x.data(), T, K, K, ScaleFmt::kF32);
  c.view = col_tiles_rhs(c.q.data(), c.s.data(), T, K);
  return c;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Shape {
  int64_t M, N, K;
};
// Edge shapes around the 6x16 micro-tile, the 48x64 block and the 128 promotion chunk.
const Shape kEdgeShapes[] = {{1, 1, 1},     {5, 3, 127},   {7, 17, 128},  {6, 16, 129},
                             {13, 65, 200}, {49, 64, 256}, {50, 130, 385}, {97, 33, 300}};

TEST(Fp8Gemm, FastMatchesTwinBitwise) {
  if (!fp8_gemm_fast_available()) GTEST_SKIP() << "no AVX2/FMA/F16C on this CPU";
  for (const Shape& sh : kEdgeShapes) {
    const auto x = random_matrix(sh.M, sh.K, 1, 97);
    const Lhs a = lhs_1x128(x, sh.M, sh.K);
    // The three kinds of right operand: W (N, K) read transposed (Fprop), W (K, N) as stored
    // (Dgrad, reduction over W's rows), 128x1 column tiles (Wgrad).
    const auto w_nk = random_matrix(sh.N, sh.K, 2, 89);
    const auto w_kn = random_matrix(sh.K, sh.N, 3, 89);
    const Weight wf = weight_128x128(w_nk, sh.N, sh.K);
    const Weight wd = weight_128x128(w_kn, sh.K, sh.N);
    const Cols cols = rhs_128x1(w_kn, sh.K, sh.N);
    const Fp8Rhs rhs[] = {fprop_rhs(wf.view), dgrad_rhs(wd.view), cols.view};
    // Every fast path: the AVX2 6x16 tiles, and the AVX-512 12x32 tiles where the CPU has them.
    for (KernelPath path : testing::available_paths()) {
      if (path == KernelPath::kPortable) continue;
      testing::ScopedKernelPath scoped(path);
      for (const Fp8Rhs& b : rhs)
        for (bool accumulate : {false, true}) {
          const auto c0 = random_matrix(sh.M, sh.N + 3, 4);  // ldc = N + 3: the padding is never touched
          std::vector<float> fast = c0, twin = c0;
          fp8_gemm(fast.data(), sh.N + 3, a.view, b, accumulate);
          fp8_gemm_ref(twin.data(), sh.N + 3, a.view, b, accumulate);
          ASSERT_TRUE(same_bits(fast, twin)) << sh.M << "x" << sh.N << "x" << sh.K << " group " << b.n_group
                                             << " accumulate " << accumulate << " " << kernel_path_name(path);
        }
    }
  }
}

TEST(Fp8Gemm, NanCodePropagates) {
  const int64_t M = 3, N = 20, K = 130;
  const auto x = random_matrix(M, K, 5);
  Lhs a = lhs_1x128(x, M, K);
  Weight w = weight_128x128(random_matrix(N, K, 6), N, K);
  w.qt[size_t(129 * N + 17)] = 0xFF;  // B[k = 129, n = 17] is NaN
  std::vector<float> fast(size_t(M * N)), twin(size_t(M * N));
  fp8_gemm(fast.data(), N, a.view, fprop_rhs(w.view), false);
  fp8_gemm_ref(twin.data(), N, a.view, fprop_rhs(w.view), false);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      EXPECT_EQ(std::isnan(fast[size_t(m * N + n)]), n == 17) << m << "," << n;
      EXPECT_EQ(std::isnan(twin[size_t(m * N + n)]), n == 17) << m << "," << n;
    }
}

TEST(Fp8Gemm, SameBitsForOneAndTwoThreads) {
  const int64_t M = 150, N = 200, K = 300;
  const Lhs a = lhs_1x128(random_matrix(M, K, 7), M, K);
  const Weight w = weight_128x128(random_matrix(N, K, 8), N, K);
  std::vector<float> one(size_t(M * N)), two(size_t(M * N));
  const int saved = num_threads();
  set_num_threads(1);
  fp8_fprop(one.data(), a.view, w.view);
  set_num_threads(2);
  fp8_fprop(two.data(), a.view, w.view);
  set_num_threads(saved);
  EXPECT_TRUE(same_bits(one, two));
}

// Against the FP64 product of the same dequantized operands, the only errors are f32 roundings.
// Per output, with S = Σ_k |ã_k·b̃_k| (ã, b̃ dequantized) and u = 2^-24:
//   in-chunk FMA chain of kc <= 128 exact products (the first is exact): error <= γ_127 · S_chunk
//   sA·sB rounded once: factor (1 + u); the promotion FMA chain over nkb chunks: γ_nkb
//   => |C - R| <= γ_(129 + nkb) · S,  γ_n = n·u / (1 - n·u).
// calc_diff = ‖C - R‖² / (‖C‖² + ‖R‖²) <= Σ bound² / Σ R². For plain N(0,1) data S ~ 0.64·K and
// |R| ~ √K, so this worst case is ~(γ · 0.64 · √K)²: 1.3e-8 at K = 512, 1.5e-7 at K = 4096 (the
// spec's "1e-8 or less"); on the outlier data below it is 8e-11 ... 2.6e-9. The actual value, with
// rounding errors of random sign, is ~1e-14, hence the second, fixed threshold.
TEST(Fp8Gemm, WithinDerivedBoundOfDequantizedF64) {
  const double u = std::ldexp(1.0, -24);
  for (const Shape& sh : {Shape{64, 96, 512}, Shape{33, 130, 1000}, Shape{16, 16, 4096}}) {
    const auto x = random_matrix(sh.M, sh.K, 11, 500);
    const auto w = random_matrix(sh.N, sh.K, 12, 500);
    const Lhs a = lhs_1x128(x, sh.M, sh.K);
    const Weight wq = weight_128x128(w, sh.N, sh.K);
    // Dequantized exactly (q·s in double: 4 + 24 significant bits).
    std::vector<double> xd(x.size()), wd(w.size());
    for (int64_t i = 0; i < sh.M * sh.K; ++i)
      xd[size_t(i)] = double(e4m3_to_f32(a.q[size_t(i)])) * a.s[size_t((i / sh.K) * fp8_groups(sh.K) + (i % sh.K) / 128)];
    for (int64_t i = 0; i < sh.N * sh.K; ++i)
      wd[size_t(i)] = double(e4m3_to_f32(wq.q[size_t(i)])) *
                      wq.s[size_t((i / sh.K / 128) * fp8_groups(sh.K) + (i % sh.K) / 128)];
    std::vector<float> c(size_t(sh.M * sh.N));
    fp8_fprop(c.data(), a.view, wq.view);
    std::vector<double> r64(c.size());
    fp8_gemm_f64(r64.data(), a.view, fprop_rhs(wq.view));
    const double nkb = double(fp8_groups(sh.K));
    const double gamma = (129 + nkb) * u / (1 - (129 + nkb) * u);
    double bound2 = 0, ref2 = 0;
    for (int64_t m = 0; m < sh.M; ++m)
      for (int64_t n = 0; n < sh.N; ++n) {
        double r = 0, S = 0;
        for (int64_t k = 0; k < sh.K; ++k) {
          const double p = xd[size_t(m * sh.K + k)] * wd[size_t(n * sh.K + k)];
          r += p;
          S += std::fabs(p);
        }
        const size_t i = size_t(m * sh.N + n);
        ASSERT_NEAR(r64[i], r, 1e-12 * S);  // the library's FP64 reference agrees with this loop
        ASSERT_LE(std::fabs(double(c[i]) - r), gamma * S) << sh.M << "x" << sh.N << "x" << sh.K << " at " << i;
        bound2 += (gamma * S) * (gamma * S);
        ref2 += r * r;
      }
    const double diff = calc_diff(c.data(), r64.data(), int64_t(c.size()));
    RecordProperty("diff_K" + std::to_string(sh.K), fmt::format("{:.3g}", diff));
    RecordProperty("bound_K" + std::to_string(sh.K), fmt::format("{:.3g}", bound2 / ref2));
    EXPECT_LE(diff, bound2 / ref2);
    EXPECT_LT(diff, 1e-8);
  }
}

// DeepGEMM's test, unchanged in spirit: BF16 N(0,1) inputs (here with one entry in 1000 scaled
// by 100), quantized as the recipe says, vs the FP64 product of the UNQUANTIZED inputs:
// calc_diff < 1e-3 for Fprop, Dgrad and Wgrad, including edge shapes.
TEST(Fp8Gemm, DeepGemmMetricEveryTrainingTiling) {
  struct Case {
    int64_t T, N, K, outlier_every;
  };
  for (const Case& cs : {Case{64, 256, 512, 1000}, Case{128, 384, 1024, 1000}, Case{37, 200, 300, 1000},
                         Case{300, 130, 129, 1000}, Case{256, 128, 256, 0}}) {
    const int64_t T = cs.T, N = cs.N, K = cs.K;
    const auto x = random_matrix(T, K, 21, cs.outlier_every);
    const auto w = random_matrix(N, K, 22, cs.outlier_every);
    const auto dy = random_matrix(T, N, 23, cs.outlier_every);
    const Weight wq = weight_128x128(w, N, K);

    std::vector<float> y(size_t(T * N));
    fp8_fprop(y.data(), lhs_1x128(x, T, K).view, wq.view);
    const double d_fprop = calc_diff(y.data(), matmul_f64(x.data(), w.data(), T, N, K, true).data(), T * N);

    std::vector<float> dx(size_t(T * K));
    fp8_dgrad(dx.data(), lhs_1x128(dy, T, N).view, wq.view);
    const double d_dgrad = calc_diff(dx.data(), matmul_f64(dy.data(), w.data(), T, K, N, false).data(), T * K);

    // Wgrad, dW (N, K) = dyᵀ · x: both operands in 128x1 tiles along T, straight from f32.
    const auto dyt = testing::transpose(dy, T, N);
    const auto dw_ref = matmul_f64(dyt.data(), x.data(), N, K, T, false);
    std::vector<float> dw(size_t(N * K), 0.0f);
    const Cols xc = rhs_128x1(x, T, K);
    fp8_wgrad(dw.data(), lhs_128x1_transposed(dy, T, N).view, xc.view);
    const double d_wgrad = calc_diff(dw.data(), dw_ref.data(), N * K);

    // The recipe's Wgrad: x comes from its FP8 1x128 cache, re-tiled 128x1 (a second rounding).
    auto wgrad_recipe = [&](ScaleFmt fmt) {
      std::vector<uint8_t> q1(size_t(T * K)), q2(size_t(T * K)), qd(size_t(T * N));
      std::vector<float> s1(size_t(T * fp8_groups(K))), s2(size_t(fp8_groups(T) * K)), sd(size_t(N * fp8_groups(T)));
      quantize_1x128(q1.data(), s1.data(), x.data(), T, K, K, fmt);
      requantize_1x128_to_128x1(q2.data(), s2.data(), q1.data(), s1.data(), T, K, fmt);
      quantize_128x1_transposed(qd.data(), sd.data(), dy.data(), T, N, N, fmt);
      std::fill(dw.begin(), dw.end(), 0.0f);
      fp8_wgrad(dw.data(), Fp8Lhs{qd.data(), sd.data(), N, T}, col_tiles_rhs(q2.data(), s2.data(), T, K));
      return calc_diff(dw.data(), dw_ref.data(), N * K);
    };
    const double d_wgrad_recipe = wgrad_recipe(ScaleFmt::kF32);
    const double d_wgrad_recipe_pow2 = wgrad_recipe(ScaleFmt::kUe8m0);

    SCOPED_TRACE(::testing::Message() << "T=" << T << " N=" << N << " K=" << K << " fprop " << d_fprop << " dgrad "
                                      << d_dgrad << " wgrad " << d_wgrad << " wgrad(recipe) " << d_wgrad_recipe
                                      << " wgrad(recipe, ue8m0) " << d_wgrad_recipe_pow2);
    const std::string tag = std::to_string(T) + "x" + std::to_string(N) + "x" + std::to_string(K) +
                            (cs.outlier_every ? "_outliers" : "");
    RecordProperty("fprop_" + tag, fmt::format("{:.3g}", d_fprop));
    RecordProperty("dgrad_" + tag, fmt::format("{:.3g}", d_dgrad));
    RecordProperty("wgrad_" + tag, fmt::format("{:.3g}", d_wgrad));
    RecordProperty("wgrad_recipe_" + tag, fmt::format("{:.3g}", d_wgrad_recipe));
    RecordProperty("wgrad_recipe_ue8m0_" + tag, fmt::format("{:.3g}", d_wgrad_recipe_pow2));
    EXPECT_LT(d_fprop, 1e-3);
    EXPECT_LT(d_dgrad, 1e-3);
    EXPECT_LT(d_wgrad, 1e-3);
    // Power-of-two scales re-tile x almost exactly (a power-of-two rescale loses bits only where a
    // value falls into the subnormal range), so the recipe's Wgrad is back at ~2 roundings. With
    // outliers they are held to the plain bound only: the f32 scale maps a tile's amax (the
    // outlier) to exactly 448, a power-of-two scale does not, and a few rounded x100 entries then
    // dominate the output norm (measured 0.6-1.7e-3 on the outlier cases).
    if (cs.outlier_every == 0) {
      EXPECT_LT(d_wgrad_recipe_pow2, 1e-3);
    }
    // With f32 scales the re-tiling rounds x a second time: three independent E4M3 roundings
    // (x twice, dy once) instead of two, each adding ~3.3e-4 to calc_diff on plain N(0,1) data,
    // so ~1e-3 is the expected value, not a bound (measured: 9.7e-4). Bound: 1.5x.
    EXPECT_LT(d_wgrad_recipe, 1.5e-3);
  }
}

// The spec's expected value (training §7.1): with plain BF16 N(0,1) inputs, E4M3 quantization
// alone gives calc_diff ≈ 6.5-6.7e-4. Far below means quantization is missing; above means an
// extra rounding or a misplaced scale (the margin to 1e-3 is only 1.5x).
TEST(Fp8Gemm, DeepGemmMetricMatchesExpectedValue) {
  const int64_t M = 32, N = 128, K = 512;
  const auto x = random_matrix(M, K, 31);
  const auto w = random_matrix(N, K, 32);
  std::vector<float> y(size_t(M * N));
  fp8_fprop(y.data(), lhs_1x128(x, M, K).view, weight_128x128(w, N, K).view);
  const double d = calc_diff(y.data(), matmul_f64(x.data(), w.data(), M, N, K, true).data(), M * N);
  RecordProperty("calc_diff", fmt::format("{:.3g}", d));
  EXPECT_GT(d, 5.5e-4);
  EXPECT_LT(d, 7.8e-4);
}

// ---- Limited accumulation.

// Operands built from raw codes: A = [a_0 .. a_{K-1}] (1, K), B = [b_0 .. b_{K-1}] (K, 1), scales 1.
struct RawDot {
  std::vector<uint8_t> a, b;
  std::vector<float> sa, sb;
  Fp8Lhs lhs() const { return {a.data(), sa.data(), 1, int64_t(a.size())}; }
  Fp8Rhs rhs() const { return col_tiles_rhs(b.data(), sb.data(), int64_t(b.size()), 1); }
};
RawDot raw_dot(int64_t K) {
  return {std::vector<uint8_t>(size_t(K), 0), std::vector<uint8_t>(size_t(K), 0),
          std::vector<float>(size_t(fp8_groups(K)), 1.0f), std::vector<float>(size_t(fp8_groups(K)), 1.0f)};
}
float emulate(const RawDot& d, LimitedAccum spec) {
  float c = 0;
  fp8_gemm_emulated(&c, d.lhs(), d.rhs(), spec);
  return c;
}

// Within one 32-group the products 1 and 2^-14 are aligned to exponent 0; 14 significant bits keep
// multiples of 2^-13, so 2^-14 is truncated away; 15 bits keep it.
TEST(Fp8Emulation, GroupAlignmentTruncates) {
  RawDot d = raw_dot(2);
  d.a = {0x38, 0x04};  // 1, 2^-7 (subnormal 4 * 2^-9)
  d.b = {0x38, 0x04};
  EXPECT_EQ(emulate(d, {.mantissa_bits = 14}), 1.0f);
  EXPECT_EQ(emulate(d, {.mantissa_bits = 15}), 1.0f + 0x1p-14f);
}

// 1 and 2^-14 in different groups: each group sum is exact, but the 14-bit accumulator cannot
// hold 1 + 2^-14. Promotion rescues the small term only when it falls in another 128-chunk.
TEST(Fp8Emulation, AccumulatorTruncatesAndPromotionRescues) {
  RawDot same_chunk = raw_dot(64);
  same_chunk.a[0] = same_chunk.b[0] = 0x38;
  same_chunk.a[32] = same_chunk.b[32] = 0x04;
  EXPECT_EQ(emulate(same_chunk, {.promote = false}), 1.0f);
  EXPECT_EQ(emulate(same_chunk, {.promote = true}), 1.0f);
  EXPECT_EQ(emulate(same_chunk, {.mantissa_bits = 15, .promote = false}), 1.0f + 0x1p-14f);

  RawDot two_chunks = raw_dot(129);
  two_chunks.a[0] = two_chunks.b[0] = 0x38;
  two_chunks.a[128] = two_chunks.b[128] = 0x04;
  EXPECT_EQ(emulate(two_chunks, {.promote = false}), 1.0f);
  EXPECT_EQ(emulate(two_chunks, {.promote = true}), 1.0f + 0x1p-14f);  // the f32 accumulator keeps it
}

// With the accumulator in the alignment, small products are truncated against the large running
// sum even when, summed within their own group, they would have survived.
TEST(Fp8Emulation, AlignmentWithAccumulator) {
  RawDot d = raw_dot(64);
  d.a[0] = d.b[0] = 0x38;   // group 0: 1
  d.a[32] = d.b[32] = 0x04;  // group 1: 2^-14 + 2^-14
  d.a[33] = d.b[33] = 0x04;
  // Group 1 aligned on its own (exponent -14): exact 2^-13; 1 + 2^-13 fits 14 bits.
  EXPECT_EQ(emulate(d, {}), 1.0f + 0x1p-13f);
  // Aligned with the accumulator (exponent 0): each 2^-14 is below the 2^-13 step and is dropped.
  EXPECT_EQ(emulate(d, {.align_with_accumulator = true}), 1.0f);
}

// With 24 bits and round-to-nearest the emulation is an f32-grade GEMM: it must agree with the
// FP64 reference to f32 accuracy (this checks its scale and chunk indexing).
TEST(Fp8Emulation, WideAccumulatorMatchesF64) {
  const int64_t M = 9, N = 140, K = 700;
  const Lhs a = lhs_1x128(random_matrix(M, K, 41, 100), M, K);
  const Weight w = weight_128x128(random_matrix(N, K, 42, 100), N, K);
  std::vector<float> c(size_t(M * N));
  std::vector<double> r(size_t(M * N));
  fp8_gemm_f64(r.data(), a.view, fprop_rhs(w.view));
  for (bool promote : {false, true}) {
    fp8_gemm_emulated(c.data(), a.view, fprop_rhs(w.view),
                      {.mantissa_bits = 24, .promote = promote, .rounding = AccRounding::kNearestEven});
    EXPECT_LT(calc_diff(c.data(), r.data(), M * N), 1e-12) << "promote " << promote;
  }
}

// The report's claim, as robust statements (spec training §3.6): at K = 4096 with a 14-bit
// accumulator, promotion every 128 is at least 10x more accurate; without promotion the error
// grows with K, with promotion it does not. Metrics: relative Frobenius and mean per-element
// relative error on N(0,1) data (the max per-element error there is set by outputs near zero),
// and the max per-element relative error on U[0,1) data, where no output is near zero.
TEST(Fp8Emulation, PromotionTenfoldAtK4096) {
  const Fp8StudyOptions normal{};
  const Fp8StudyRow r = fp8_accumulation_study(4096, normal);
  EXPECT_GE(r.unpromoted.frob_rel, 10 * r.promoted.frob_rel);
  EXPECT_GE(r.unpromoted.mean_rel, 10 * r.promoted.mean_rel);
  const Fp8StudyRow u = fp8_accumulation_study(4096, {.dist = StudyDist::kUniform});
  EXPECT_GE(u.unpromoted.max_rel, 10 * u.promoted.max_rel);

  const Fp8StudyRow small = fp8_accumulation_study(512, normal), large = fp8_accumulation_study(16384, normal);
  EXPECT_GT(large.unpromoted.frob_rel, 4 * small.unpromoted.frob_rel);  // ~√K·... growth, 32x the K
  EXPECT_LT(large.promoted.frob_rel, 2 * small.promoted.frob_rel);      // flat: each chunk is 128 long
}

}  // namespace
}  // namespace dsv3::kernels
