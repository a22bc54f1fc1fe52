// Aux-loss-free bias update and load metrics on hand-derived cases.
#include "train/balance.h"

#include <gtest/gtest.h>

namespace dsv3 {
namespace {

TEST(Balance, BiasUpdateSigns) {
  // Counts 4,0,2,2: mean 2, e = −2, +2, 0, 0 → −γ, +γ, unchanged, unchanged.
  std::vector<float> b = {0.5f, 0.0f, -0.25f, 0.0f};
  std::vector<int64_t> c = {4, 0, 2, 2};
  update_router_bias(b, c, 0.001f);
  EXPECT_FLOAT_EQ(b[0], 0.5f - 0.001f);
  EXPECT_FLOAT_EQ(b[1], 0.001f);
  EXPECT_FLOAT_EQ(b[2], -0.25f);
  EXPECT_FLOAT_EQ(b[3], 0.0f);
  // Mean 5/3 is not an integer: every expert moves.
  std::vector<float> b2(3, 0.0f);
  update_router_bias(b2, std::vector<int64_t>{3, 1, 1}, 0.01f);
  EXPECT_EQ(b2, (std::vector<float>{-0.01f, 0.01f, 0.01f}));
  // γ = 0 disables the update.
  update_router_bias(b2, std::vector<int64_t>{3, 1, 1}, 0.0f);
  EXPECT_EQ(b2, (std::vector<float>{-0.01f, 0.01f, 0.01f}));
}

TEST(Balance, LayerStats) {
  std::vector<int64_t> c = {4, 0, 2, 2};
  std::vector<float> b = {0.1f, -0.2f, 0.0f, 0.3f};
  LayerLoadStats s = layer_load_stats(c, b);
  EXPECT_DOUBLE_EQ(s.max_vio, 1.0);  // (4 − 2)/2
  EXPECT_DOUBLE_EQ(s.min_rel, 0.0);
  EXPECT_DOUBLE_EQ(s.max_rel, 2.0);
  EXPECT_EQ(s.zero_experts, 1);
  EXPECT_FLOAT_EQ(s.bias_min, -0.2f);
  EXPECT_FLOAT_EQ(s.bias_max, 0.3f);
  LayerLoadStats e = layer_load_stats(std::vector<int64_t>{0, 0}, {});
  EXPECT_EQ(e.max_vio, 0.0);
  EXPECT_EQ(e.zero_experts, 2);
}

TEST(Balance, SummaryAveragesLayers) {
  // Layer 0: MaxVio 1.0 (above); layer 1: counts 3,1,1,3 → mean 2, MaxVio 0.5, min_rel 0.5.
  std::vector<std::vector<int64_t>> c = {{4, 0, 2, 2}, {3, 1, 1, 3}};
  std::vector<std::vector<float>> b = {{0, 0, 0, 0}, {-1, 0, 0, 2}};
  LoadSummary s = summarize_load(c, b);
  EXPECT_DOUBLE_EQ(s.max_vio_mean, 0.75);
  EXPECT_DOUBLE_EQ(s.max_vio_max, 1.0);
  EXPECT_DOUBLE_EQ(s.min_rel, 0.0);
  EXPECT_DOUBLE_EQ(s.max_rel, 2.0);
  EXPECT_EQ(s.zero_experts, 1);
  EXPECT_FLOAT_EQ(s.bias_min, -1.0f);
  EXPECT_FLOAT_EQ(s.bias_max, 2.0f);
  ASSERT_EQ(s.layers.size(), 2u);
  EXPECT_DOUBLE_EQ(s.layers[1].min_rel, 0.5);
}

TEST(Balance, AccumulateCounts) {
  std::vector<std::vector<int64_t>> acc;
  accumulate_counts(acc, {{1, 2}, {3, 4}});
  accumulate_counts(acc, {{10, 20}, {30, 40}});
  EXPECT_EQ(acc, (std::vector<std::vector<int64_t>>{{11, 22}, {33, 44}}));
}

}  // namespace
}  // namespace dsv3

namespace dsv3 {
namespace {

// A layer that routed no tokens (the MTP block when its loss weight is 0) must not halve the
// mean MaxVio nor count its experts as idle.
TEST(BalanceSummary, LayersThatRoutedNothingAreLeftOut) {
  const std::vector<std::vector<int64_t>> counts = {{6, 2, 0, 0}, {0, 0, 0, 0}};
  LoadSummary s = summarize_load(counts, {});
  // Layer 0: mean load 2, max 6 -> MaxVio (6 - 2) / 2 = 2; two idle experts.
  EXPECT_DOUBLE_EQ(s.max_vio_mean, 2.0);
  EXPECT_DOUBLE_EQ(s.max_vio_max, 2.0);
  EXPECT_EQ(s.zero_experts, 2);
  EXPECT_EQ(s.layers.size(), 2u);
}

}  // namespace
}  // namespace dsv3
