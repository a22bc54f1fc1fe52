#include "model/model_stats.h"

#include <gtest/gtest.h>

#include <cmath>

#include "support/checkpoint_writer.h"

namespace dsv3 {
namespace {

// Hand count for tiny_v3_config (V=256, D=64, I=96, I_e=32, L=3 with 1 dense, H=4, r_q=48,
// r_kv=32, d_n=16, d_r=8, d_v=12, E=8, 1 shared, K=2, 1 MTP layer):
//   attention/layer = q_a 48·64 + q_a_norm 48 + q_b 96·48 + kv_a 40·64 + kv_norm 32
//                     + kv_b 112·32 + o 64·48                                  = 16,976
//   norms/layer 2·64 = 128; dense MLP 3·96·64 = 18,432; router 8·64 + 8 = 520;
//   routed experts 8·3·32·64 = 49,152; shared 3·32·64 = 6,144
//   dense layer 35,536; MoE layer 72,920; embed = head = 16,384; final norm 64
//   total = 16,384 + 16,384 + 64 + 35,536 + 2·72,920                         = 214,208
//   active = 64 (one embedding row) + 16,384 + 64 + 35,536
//            + 2·(16,976 + 128 + 520 + 2·6,144 + 6,144)                       = 124,160
//   MTP = 64 + 64 + 64·128 + 64 + 72,920 = 81,304 (+ copies 2·16,384 = 32,768)
constexpr int64_t kTinyTotal = 214208, kTinyActive = 124160, kTinyMtp = 81304, kTinyCopies = 32768;

TEST(ModelStatsTest, TinyV3MatchesHandCount) {
  ModelStats st = compute_model_stats(testing::tiny_v3_config());
  EXPECT_EQ(st.params.total(), kTinyTotal);
  EXPECT_EQ(st.params.attention, 3 * 16976);
  EXPECT_EQ(st.params.routed_experts, 2 * 49152);
  EXPECT_EQ(st.active.total(), kTinyActive);
  EXPECT_EQ(st.active.routed_experts, 2 * 2 * 6144);
  EXPECT_EQ(st.mtp.total(), kTinyMtp);
  EXPECT_EQ(st.mtp_copies, kTinyCopies);
  EXPECT_EQ(st.kv_latent_values, 3 * (32 + 8));
  EXPECT_EQ(st.kv_mha_values, 3 * 4 * (24 + 12));
  EXPECT_EQ(st.kv_latent_values_mtp, 40);
}

TEST(ModelStatsTest, DeepSeekV3MatchesPublishedCounts) {
  auto cfg = load_model_config(std::string(DSV3_TEST_DATA_DIR) + "/golden/configs/deepseek-v3-671b.json");
  ASSERT_TRUE(cfg.is_ok());
  const ModelConfig& c = cfg.value();
  ModelStats st = compute_model_stats(c);
  EXPECT_EQ(st.params.total(), 671026419200);  // spec §5.2
  EXPECT_EQ(st.mtp.total(), 11610068224);      // spec §4.2
  EXPECT_EQ(st.params.attention / 61, 187107328);
  // "37.55B by straightforward counting" (spec §5.2) counts the whole embedding matrix.
  double with_embedding = double(st.active.total() - c.dim + c.vocab_size * c.dim);
  EXPECT_NEAR(with_embedding / 1e9, 37.55, 0.005);
  EXPECT_EQ(st.kv_latent_values * 2, 70272);  // BF16 bytes per token (spec §5.6)
  EXPECT_EQ(st.kv_mha_values / 61, 40960);
}

TEST(ModelStatsTest, TiedHeadIsCountedOnceButIsActive) {
  ModelConfig c = testing::tiny_v3_config();
  c.tie_word_embeddings = true;
  ModelStats st = compute_model_stats(c);
  EXPECT_EQ(st.params.total(), kTinyTotal - 16384);
  EXPECT_EQ(st.active.total(), kTinyActive);
}

}  // namespace
}  // namespace dsv3
