// AdamW / SGD updates against values derived by hand, and gradient clipping.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/numeric.h"
#include "core/parallel_for.h"

namespace dsv3 {
namespace {

// One decayed matrix element and one undecayed norm element.
ParamSet two_params() {
  ParamSet ps;
  ps.add("w", {1, 1}, true);
  ps.add("norm", {1}, false);
  ps.finalize();
  return ps;
}

TEST(Optimizer, AdamWTwoStepsByHand) {
  ParamSet ps = two_params();
  ps.tensors()[0].data[0] = 1.0f;
  ps.tensors()[1].data[0] = 1.0f;
  Optimizer opt(ps, OptimizerOptions{});  // β1 0.9, β2 0.95, ε 1e-8, wd 0.1
  const double lr = 0.1;

  // Step 1, g = 0.5: m = 0.05, v = 0.05·0.25 = 0.0125; m̂ = 0.05/0.1 = 0.5, v̂ = 0.0125/0.05 =
  // 0.25, √v̂ = 0.5, so the step is lr·0.5/(0.5 + 1e-8) = 0.1·(1 − 2e-8).
  // w: 1·(1 − 0.1·0.1) − 0.1 = 0.89;  norm (no decay): 1 − 0.1 = 0.9.
  ps.tensors()[0].grad[0] = 0.5f;
  ps.tensors()[1].grad[0] = 0.5f;
  opt.step(lr);
  // f32 arithmetic on O(1) values: a few ulps (≈6e-8 each) of error.
  EXPECT_NEAR(ps.tensors()[0].data[0], 0.89, 3e-7);
  EXPECT_NEAR(ps.tensors()[1].data[0], 0.9, 3e-7);

  // Step 2, g = −1: m = 0.9·0.05 − 0.1 = −0.055, v = 0.95·0.0125 + 0.05 = 0.061875;
  // bias corrections 1 − 0.81 = 0.19 and 1 − 0.9025 = 0.0975; m̂ = −0.28947368, v̂ = 0.63461538,
  // √v̂ = 0.79662751; step = 0.1·(−0.28947368 / 0.79662751) = −0.036337345.
  // w: 0.89·0.99 + 0.036337345 = 0.917437345;  norm: 0.9 + 0.036337345 = 0.936337345.
  ps.tensors()[0].grad[0] = -1.0f;
  ps.tensors()[1].grad[0] = -1.0f;
  opt.step(lr);
  EXPECT_NEAR(ps.tensors()[0].data[0], 0.917437345, 5e-7);
  EXPECT_NEAR(ps.tensors()[1].data[0], 0.936337345, 5e-7);
  EXPECT_EQ(opt.step_count(), 2);
  float m, v;
  std::memcpy(&m, opt.moment_bytes(0, 0), 4);
  std::memcpy(&v, opt.moment_bytes(0, 1), 4);
  // 1 − 0.9f is 0.100000024 in f32 (relative 2.4e-7): the moments carry that much error.
  EXPECT_NEAR(m, -0.055, 0.055 * 5e-7);
  EXPECT_NEAR(v, 0.061875, 0.061875 * 5e-7);
}

TEST(Optimizer, Bf16MomentsAreRoundedToNearestEven) {
  ParamSet ps = two_params();
  OptimizerOptions o;
  o.moments = MomentDType::BF16;
  Optimizer opt(ps, o);
  EXPECT_EQ(opt.moment_nbytes(0), 2u);
  // g = 0.3: m = (1 − 0.9)·0.3 = 0.03 in f32, v = 0.05·0.09 = 0.0045; stored as their bf16.
  ps.tensors()[0].grad[0] = 0.3f;
  opt.step(0.01);
  uint16_t mb, vb;
  std::memcpy(&mb, opt.moment_bytes(0, 0), 2);
  std::memcpy(&vb, opt.moment_bytes(0, 1), 2);
  EXPECT_EQ(mb, f32_to_bf16((1.0f - 0.9f) * 0.3f));
  EXPECT_EQ(vb, f32_to_bf16((1.0f - 0.95f) * 0.3f * 0.3f));
  EXPECT_NE(bf16_to_f32(mb), (1.0f - 0.9f) * 0.3f);  // the rounding is visible
}

TEST(Optimizer, SgdWithDecoupledDecay) {
  ParamSet ps = two_params();
  ps.tensors()[0].data[0] = 2.0f;
  ps.tensors()[1].data[0] = 2.0f;
  OptimizerOptions o;
  o.kind = OptimizerKind::Sgd;
  Optimizer opt(ps, o);
  EXPECT_FALSE(opt.has_moments());
  ps.tensors()[0].grad[0] = 1.0f;
  ps.tensors()[1].grad[0] = 1.0f;
  opt.step(0.5);
  EXPECT_FLOAT_EQ(ps.tensors()[0].data[0], 2.0f * (1 - 0.05f) - 0.5f);  // 1.4
  EXPECT_FLOAT_EQ(ps.tensors()[1].data[0], 1.5f);
}

TEST(Optimizer, ClipGlobalNorm) {
  ParamSet ps = two_params();
  ps.tensors()[0].grad[0] = 3.0f;
  ps.tensors()[1].grad[0] = 4.0f;
  double norm = grad_norm(ps);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  double coef = clip_grad_norm(ps, norm, 1.0);
  EXPECT_NEAR(coef, 0.2, 1e-7);
  EXPECT_NEAR(ps.tensors()[0].grad[0], 0.6, 1e-6);
  EXPECT_NEAR(ps.tensors()[1].grad[0], 0.8, 1e-6);
  EXPECT_NEAR(grad_norm(ps), 1.0, 1e-6);
  // Below the threshold nothing changes.
  EXPECT_EQ(clip_grad_norm(ps, grad_norm(ps), 2.0), 1.0);
  EXPECT_FLOAT_EQ(ps.tensors()[0].grad[0], float(3.0 * coef));
}

TEST(Optimizer, GradNormSameBitsForAnyThreadCount) {
  ParamSet ps;
  ps.add("a", {300001}, true);
  ps.add("b", {77}, false);
  ps.finalize();
  for (int64_t i = 0; i < ps.numel(); ++i) ps.grad()[i] = float(std::sin(double(i))) * 1e-3f;
  int saved = num_threads();
  set_num_threads(1);
  double n1 = grad_norm(ps);
  set_num_threads(2);
  double n2 = grad_norm(ps);
  set_num_threads(saved);
  EXPECT_EQ(n1, n2);
  double ref = 0;
  for (int64_t i = 0; i < ps.numel(); ++i) ref += double(ps.grad()[i]) * ps.grad()[i];
  // Blocked vs sequential double sums of 3e5 positive terms: relative error ≲ n·2^-53 ≈ 3e-11.
  EXPECT_NEAR(n1, std::sqrt(ref), 1e-10 * std::sqrt(ref));
}

}  // namespace
}  // namespace dsv3
