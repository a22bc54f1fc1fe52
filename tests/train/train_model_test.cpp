// TrainModel against the inference Transformer and against itself: the training forward's loss
// equals the cross-entropy of the inference logits on the same weights (main model and MTP
// module), parameters round-trip through weights_view/load_params_from, and gradients are
// identical bit for bit across thread counts and with recompute on or off.
//
// Tolerance of the loss comparison: both paths are f32 with sums of at most a few hundred
// terms (training: f32 dot products; inference: double-accumulated reference matmul), so logits
// agree to ~1e-6 relative and the mean cross-entropy to a few 1e-7; 1e-5 relative is the bound
// the two must meet, while any semantic difference (rope position, mask, routing, norm order)
// moves the loss by more than 1e-3.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/parallel_for.h"
#include "core/rng.h"
#include "model/random_weights.h"
#include "model/transformer.h"
#include "support/model_fixtures.h"
#include "support/train_fixtures.h"
#include "train/train_model.h"

namespace dsv3 {
namespace {

using testing::make_tokens;
using testing::randomize_model;


struct InferenceLosses {
  double main = 0, mtp = 0;
};

// The same losses from the inference Transformer: main next-token CE and MTP module 0's CE.
InferenceLosses inference_losses(const ModelConfig& cfg, const ModelWeights& w, const std::vector<int32_t>& tokens,
                                 int64_t B, int64_t T) {
  const int64_t V = cfg.vocab_size;
  InferenceLosses out;
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* seq = tokens.data() + b * (T + 1);
    Transformer model(cfg, w);
    KvPool pool(model.cache_layers(), model.cache_row_dim(), 16, 16);
    SequenceCache cache(pool);
    std::vector<float> logits(size_t(T * V));
    SeqChunk chunk{&cache, seq, T};
    EXPECT_TRUE(model.forward({&chunk, 1}, logits.data(), {AttentionPath::Naive, true}).is_ok());
    out.main += testing::mean_cross_entropy(logits.data(), seq + 1, T, V) / double(B);
    if (cfg.n_mtp_layers == 0 || T < 2) continue;
    std::vector<float> h(model.final_hidden(), model.final_hidden() + (T - 1) * cfg.dim);
    KvPool mpool(model.mtp_cache_layers(), model.cache_row_dim(), 16, 16);
    SequenceCache mcache(mpool);
    SeqChunk mchunk{&mcache, seq + 1, T - 1};
    std::vector<float> mlogits(size_t((T - 1) * V));
    EXPECT_TRUE(model.mtp_forward(0, {&mchunk, 1}, h.data(), mlogits.data(), {AttentionPath::Naive, true}).is_ok());
    out.mtp += testing::mean_cross_entropy(mlogits.data(), seq + 2, T - 1, V) / double(B);
  }
  return out;
}

class TrainVsInference : public ::testing::TestWithParam<int> {
 protected:
  ModelConfig cfg() const { return GetParam() == 0 ? testing::odd_shapes_v3_config() : testing::odd_shapes_v2_lite_config(); }
};

TEST_P(TrainVsInference, LossEqualsInferenceCrossEntropy) {
  const ModelConfig c = cfg();
  const int64_t B = 2, T = 9;
  TrainModel model(c, {.batch = B, .seq_len = T, .mtp_weight = 0.3, .balance_alpha = 0.0});
  randomize_model(model, 7);
  auto tokens = make_tokens(B, T, c.vocab_size, 3);
  LossParts parts = model.evaluate({tokens.data(), B, T});
  ModelWeights w = model.weights_view();
  InferenceLosses ref = inference_losses(c, w, tokens, B, T);
  EXPECT_NEAR(parts.main, ref.main, 1e-5 * ref.main);
  if (c.n_mtp_layers > 0) {
    EXPECT_NEAR(parts.mtp, ref.mtp, 1e-5 * ref.mtp);
    EXPECT_NEAR(parts.total, parts.main + 0.3 * parts.mtp, 1e-12);
  }
  EXPECT_GT(parts.main, 0.5 * std::log(double(c.vocab_size)));
}

INSTANTIATE_TEST_SUITE_P(Configs, TrainVsInference, ::testing::Values(0, 1));

TEST(TrainModel, ParamNamesFollowTheCheckpoint) {
  const ModelConfig c = testing::odd_shapes_v3_config();
  TrainModel model(c, {.batch = 1, .seq_len = 4});
  const auto& t = model.params().tensors();
  EXPECT_EQ(t.front().name, "model.embed_tokens.weight");
  EXPECT_NE(model.params().find("model.layers.0.self_attn.q_a_proj.weight"), nullptr);
  EXPECT_NE(model.params().find("model.layers.1.mlp.experts.7.down_proj.weight"), nullptr);
  EXPECT_NE(model.params().find("model.layers.1.mlp.gate.weight"), nullptr);
  EXPECT_NE(model.params().find("model.layers.1.mlp.shared_experts.up_proj.weight"), nullptr);
  EXPECT_NE(model.params().find("model.layers.3.eh_proj.weight"), nullptr);
  EXPECT_NE(model.params().find("model.layers.3.shared_head.norm.weight"), nullptr);
  EXPECT_NE(model.params().find("model.layers.3.mlp.experts.0.gate_proj.weight"), nullptr);
  EXPECT_NE(model.params().find("lm_head.weight"), nullptr);
  // Shared embedding and head: no MTP copies; the router bias is state, not a parameter.
  EXPECT_EQ(model.params().find("model.layers.3.embed_tokens.weight"), nullptr);
  EXPECT_EQ(model.params().find("model.layers.3.shared_head.head.weight"), nullptr);
  EXPECT_EQ(model.params().find("model.layers.1.mlp.gate.e_score_correction_bias"), nullptr);
  EXPECT_EQ(model.router_biases().size(), 3u);  // MoE layers 1, 2 and the MTP layer
  const ParamTensor* kvb = model.params().find("model.layers.2.self_attn.kv_b_proj.weight");
  ASSERT_NE(kvb, nullptr);
  EXPECT_EQ(kvb->shape, (std::vector<int64_t>{c.n_heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}));
}

TEST(TrainModel, LoadParamsFromWeights) {
  const ModelConfig c = testing::odd_shapes_v3_config();
  // FP8 weights with block scales: loading dequantizes exactly as WeightMatrix::at does.
  RandomWeights rw(c, {.dtype = DType::F8_E4M3, .seed = 5});
  TrainModel model(c, {.batch = 1, .seq_len = 4});
  ASSERT_TRUE(model.load_params_from(rw.weights()).is_ok());
  const WeightMatrix& src = rw.weights().layers[1].moe.experts[3].w2;
  const ParamTensor* dst = model.params().find("model.layers.1.mlp.experts.3.down_proj.weight");
  for (int64_t r = 0; r < src.rows; ++r)
    for (int64_t col = 0; col < src.cols; ++col) ASSERT_EQ(dst->data[r * src.cols + col], src.at(r, col));
  EXPECT_EQ(model.router_biases()[0], rw.weights().layers[1].moe.bias);
  // Round trip through the inference view.
  TrainModel copy(c, {.batch = 1, .seq_len = 4});
  ASSERT_TRUE(copy.load_params_from(model.weights_view()).is_ok());
  for (int64_t i = 0; i < model.params().numel(); ++i) ASSERT_EQ(copy.params().data()[i], model.params().data()[i]);
  // A structural mismatch is an error, not a crash.
  ModelConfig other = c;
  other.n_layers = 2;
  TrainModel small(other, {.batch = 1, .seq_len = 4});
  EXPECT_FALSE(small.load_params_from(rw.weights()).is_ok());
}

std::vector<float> grads_of(TrainModel& model, const std::vector<int32_t>& tokens, int64_t B, int64_t T) {
  model.params().zero_grad();
  model.forward_backward({tokens.data(), B, T});
  return std::vector<float>(model.params().grad(), model.params().grad() + model.params().numel());
}

TEST(TrainModel, GradientsIndependentOfThreadsAndRecompute) {
  const ModelConfig c = testing::odd_shapes_v3_config();
  const int64_t B = 3, T = 7;
  auto tokens = make_tokens(B, T, c.vocab_size, 11);
  TrainModelOptions opt{.batch = B, .seq_len = T, .mtp_weight = 0.3, .balance_alpha = 0.01};
  TrainModel saved(c, opt);
  randomize_model(saved, 2);
  opt.recompute = true;
  TrainModel recomputed(c, opt);
  randomize_model(recomputed, 2);
  const int threads = num_threads();
  set_num_threads(1);
  auto g1 = grads_of(saved, tokens, B, T);
  set_num_threads(2);
  auto g2 = grads_of(saved, tokens, B, T);
  auto g3 = grads_of(recomputed, tokens, B, T);
  set_num_threads(threads);
  ASSERT_EQ(g1.size(), g2.size());
  for (size_t i = 0; i < g1.size(); ++i) {
    ASSERT_EQ(g1[i], g2[i]) << i;
    ASSERT_EQ(g2[i], g3[i]) << i;
  }
  // Accumulation: a second backward without zeroing doubles every gradient.
  saved.params().zero_grad();
  saved.forward_backward({tokens.data(), B, T});
  saved.forward_backward({tokens.data(), B, T});
  // (Each gradient is then summed onto the first one instead of from zero: f32 rounding differs.)
  float gmax = 0.0f;
  for (float v : g2) gmax = std::max(gmax, std::fabs(v));
  for (size_t i = 0; i < g2.size(); ++i) ASSERT_NEAR(saved.params().grad()[i], 2.0f * g2[i], 1e-5f * gmax) << i;
  // A shorter batch than planned runs in the same arena.
  auto short_tokens = make_tokens(1, 4, c.vocab_size, 5);
  LossParts p = saved.forward_backward({short_tokens.data(), 1, 4});
  EXPECT_TRUE(std::isfinite(p.total));
}

TEST(TrainModel, MtpNormalizerOption) {
  // The report's 1/T normalizer scales L^1 by (T − 1)/T relative to the mean over valid targets.
  const ModelConfig c = testing::odd_shapes_v3_config();
  const int64_t B = 2, T = 6;
  auto tokens = make_tokens(B, T, c.vocab_size, 8);
  TrainModelOptions opt{.batch = B, .seq_len = T, .mtp_weight = 0.3};
  TrainModel mean_valid(c, opt);
  randomize_model(mean_valid, 3);
  opt.mtp_report_normalizer = true;
  TrainModel report(c, opt);
  randomize_model(report, 3);
  const double a = mean_valid.evaluate({tokens.data(), B, T}).mtp;
  const double b = report.evaluate({tokens.data(), B, T}).mtp;
  EXPECT_NEAR(b, a * double(T - 1) / double(T), 1e-12 * a);
}

TEST(TrainModel, ExpertCountsCoverEveryAssignment) {
  const ModelConfig c = testing::odd_shapes_v3_config();
  const int64_t B = 2, T = 5;
  TrainModel model(c, {.batch = B, .seq_len = T, .mtp_weight = 0.3});
  randomize_model(model, 4);
  auto tokens = make_tokens(B, T, c.vocab_size, 1);
  model.evaluate({tokens.data(), B, T});
  const auto& counts = model.expert_counts();
  ASSERT_EQ(counts.size(), 3u);
  for (size_t l = 0; l < counts.size(); ++l) {
    int64_t total = 0;
    for (int64_t n : counts[l]) total += n;
    const int64_t rows = l < 2 ? B * T : B * (T - 1);
    EXPECT_EQ(total, rows * c.n_activated_experts) << l;
  }
  EXPECT_GT(model.activation_bytes(), 0);
  EXPECT_FALSE(model.activation_table().empty());
}

}  // namespace
}  // namespace dsv3
