// Hand-derived cases for the forward ops, and the YaRN constants the spec computes for the
// 671B and V2-Lite configurations (deepseek-v3-model.md §1.3, §2.4-2.5).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "model/gate.h"
#include "model/rope_table.h"

namespace dsv3 {
namespace {

ModelConfig v3_671b_rope() {
  ModelConfig c;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.rope_theta = 10000;
  c.yarn = {true, 40.0, 4096, 32.0, 1.0, 1.0, 1.0};
  return c;
}

TEST(Yarn, InvFreqMatchesSpecTableFor671B) {
  auto inv = rope_inv_freq(v3_671b_rope());
  ASSERT_EQ(inv.size(), 32u);
  // spec §2.4 table (fp64, 10 significant digits): rel. tolerance 1e-9.
  const std::pair<int, double> expected[] = {{0, 1.0},           {1, 7.498942093e-01}, {9, 7.498942093e-02},
                                             {10, 5.623413252e-02}, {11, 3.900692657e-02}, {12, 2.687936011e-02},
                                             {16, 5.5e-03},       {19, 1.370513636e-03}, {22, 1.778279410e-04},
                                             {23, 3.333803580e-05}, {24, 2.5e-05},       {31, 3.333803580e-06}};
  for (auto [i, v] : expected) EXPECT_NEAR(inv[size_t(i)] / v, 1.0, 1e-9) << "i=" << i;
}

TEST(Yarn, SoftmaxScaleIncludesMscaleSquared) {
  EXPECT_NEAR(attention_softmax_scale(v3_671b_rope()), 0.1352337789, 1e-10);
  ModelConfig v2 = v3_671b_rope();
  v2.yarn.mscale = v2.yarn.mscale_all_dim = 0.707;  // DeepSeek-V2-Lite
  EXPECT_NEAR(attention_softmax_scale(v2), 0.114721, 1e-6);
  ModelConfig plain = v3_671b_rope();
  plain.yarn.enabled = false;
  EXPECT_DOUBLE_EQ(attention_softmax_scale(plain), 1.0 / std::sqrt(192.0));
  EXPECT_EQ(rope_inv_freq(plain)[31], std::pow(10000.0, -62.0 / 64.0));
}

TEST(Yarn, DegenerateRampDoesNotDivideByZero) {
  ModelConfig c = v3_671b_rope();
  c.yarn.beta_fast = c.yarn.beta_slow = 1.0;  // low == high (Kimi-K2-style values)
  for (double v : rope_inv_freq(c)) EXPECT_TRUE(std::isfinite(v));
}

TEST(RmsNorm, HandComputed) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f};
  float out[4], rstd;
  kernels::rmsnorm_forward(out, &rstd, x, w, 1, 4, 0.0f);
  const float r = 1.0f / std::sqrt(7.5f);  // mean of squares = 30 / 4
  EXPECT_FLOAT_EQ(rstd, r);
  EXPECT_FLOAT_EQ(out[0], r);
  EXPECT_FLOAT_EQ(out[1], 2 * r);
  EXPECT_FLOAT_EQ(out[2], 6 * r);
  EXPECT_FLOAT_EQ(out[3], 2 * r);
}

TEST(Rope, RotatesInterleavedPairsByPositionTimesFrequency) {
  ModelConfig c;
  c.qk_rope_head_dim = 4;
  c.rope_theta = 10000;
  RopeTable table(c);  // inv_freq = [1, 0.01]
  const int64_t pos[2] = {0, 3};
  table.compute(pos, 2);
  float x[8] = {1, 2, 3, 4, 1, 2, 3, 4};
  kernels::rope_forward(x, 2, 1, 4, 4, 4, table.cos(), table.sin());
  // position 0: identity.
  EXPECT_FLOAT_EQ(x[0], 1);
  EXPECT_FLOAT_EQ(x[3], 4);
  // position 3: pair (1, 2) by 3 rad, pair (3, 4) by 0.03 rad (complex multiply, official layout).
  EXPECT_NEAR(x[4], std::cos(3.0) - 2 * std::sin(3.0), 1e-6);
  EXPECT_NEAR(x[5], std::sin(3.0) + 2 * std::cos(3.0), 1e-6);
  EXPECT_NEAR(x[6], 3 * std::cos(0.03) - 4 * std::sin(0.03), 1e-6);
  EXPECT_NEAR(x[7], 3 * std::sin(0.03) + 4 * std::cos(0.03), 1e-6);
  kernels::rope_backward(x, 2, 1, 4, 4, 4, table.cos(), table.sin());  // inverse rotation
  EXPECT_NEAR(x[4], 1, 1e-6);
  EXPECT_NEAR(x[7], 4, 1e-6);
}

RouterConfig v3_router() {
  RouterConfig rc;
  rc.n_experts = 8;
  rc.top_k = 3;
  rc.n_groups = 4;
  rc.top_groups = 2;
  rc.route_scale = 2.5f;
  return rc;
}

TEST(Gate, GroupLimitedSelectionUsesBiasButWeightsDoNot) {
  const float s[8] = {0.9f, 0.1f, 0.2f, 0.3f, 0.8f, 0.7f, 0.4f, 0.05f};
  const std::vector<float> bias = {0, 0, 0.5f, 0.5f, 0, 0, 0, 0};
  // Biased scores: [.9 .1 | .7 .8 | .8 .7 | .4 .05]; group top-2 sums 1.0, 1.5, 1.5, 0.45 →
  // groups 1 and 2 survive (expert 0, the best unbiased score, is masked with its group).
  // Top-3 of {.7 .8 .8 .7}: experts 3, 4 (tie → lower id), then 2 (tie with 5 → lower id).
  int32_t experts[3];
  float weights[3], work[8];
  route_token(experts, weights, s, bias, v3_router(), work);
  EXPECT_EQ(experts[0], 3);
  EXPECT_EQ(experts[1], 4);
  EXPECT_EQ(experts[2], 2);
  // Weights from the unbiased s of the chosen experts, normalized, × 2.5.
  EXPECT_FLOAT_EQ(weights[0], 2.5f * 0.3f / 1.3f);
  EXPECT_FLOAT_EQ(weights[1], 2.5f * 0.8f / 1.3f);
  EXPECT_FLOAT_EQ(weights[2], 2.5f * 0.2f / 1.3f);
}

TEST(Gate, NegativeBiasMasksWithMinusInfinityNotZero) {
  // All biased scores of the surviving groups are negative: a 0.0 fill of the masked groups
  // would let masked experts win; -inf must not.
  const float s[8] = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.9f, 0.1f};
  const std::vector<float> bias = {-1, -1, -1, -1, -2, -2, -5, -5};
  RouterConfig rc = v3_router();
  int32_t experts[3];
  float weights[3], work[8];
  route_token(experts, weights, s, bias, rc, work);
  // Group sums: -1.8, -1.8, -3.8, -9.0 → groups 0 and 1 kept; every chosen expert is in 0..3.
  for (int32_t e : experts) EXPECT_LT(e, 4);
}

TEST(Gate, GreedySoftmaxWithoutNormalization) {
  RouterConfig rc;
  rc.n_experts = 4;
  rc.top_k = 2;
  rc.method = TopkMethod::Greedy;
  rc.score_func = ScoreFunc::Softmax;
  rc.normalize = false;
  rc.route_scale = 1.0f;
  const float s[4] = {0.1f, 0.4f, 0.2f, 0.3f};
  int32_t experts[2];
  float weights[2], work[4];
  route_token(experts, weights, s, {}, rc, work);
  EXPECT_EQ(experts[0], 1);
  EXPECT_EQ(experts[1], 3);
  EXPECT_FLOAT_EQ(weights[0], 0.4f);
  EXPECT_FLOAT_EQ(weights[1], 0.3f);
}

TEST(Gate, GroupLimitedGreedyScoresGroupsByTheirMax) {
  RouterConfig rc = v3_router();
  rc.method = TopkMethod::GroupLimitedGreedy;
  rc.top_k = 2;
  rc.normalize = false;
  rc.route_scale = 1.0f;
  // Group max: .5, .45, .6, .1 → groups 2 and 0 (a top-2 sum would pick group 1: .9 > .8).
  const float s[8] = {0.5f, 0.3f, 0.45f, 0.45f, 0.6f, 0.0f, 0.1f, 0.0f};
  int32_t experts[2];
  float weights[2], work[8];
  route_token(experts, weights, s, {}, rc, work);
  EXPECT_EQ(experts[0], 4);
  EXPECT_EQ(experts[1], 0);
}

}  // namespace
}  // namespace dsv3
