// Export of a training checkpoint to the Hugging Face layout, loaded back by the inference
// loader: the inference logits' cross-entropy equals TrainModel's own forward loss (F32
// exactly up to summation order; BF16 / FP8 within their rounding), tensor names and dtypes
// follow DeepSeek's layout, block FP8 quantization by hand.
#include "train/export.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/numeric.h"
#include "model/loader.h"
#include "model/transformer.h"
#include "support/model_fixtures.h"
#include "support/temp_dir.h"
#include "support/train_fixtures.h"
#include "train/checkpoint.h"
#include "train/train_model_adapter.h"

namespace dsv3 {
namespace {

using testing::TempDir;

TEST(Export, E4M3BlocksByHand) {
  // amax 896 → scale 2; w/2 = 0.5, −1, 0.25, 2, 0, −448 → 0x30, 0xB8, 0x28, 0x40, 0x00, 0xFE.
  const float w[6] = {1, -2, 0.5f, 4, 0, -896};
  uint8_t q[6];
  float s;
  quantize_e4m3_blocks(w, 2, 3, q, &s);
  EXPECT_EQ(s, 2.0f);
  const uint8_t want[6] = {0x30, 0xB8, 0x28, 0x40, 0x00, 0xFE};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(q[i], want[i]) << i;

  // Partial edge blocks (130 x 129 → 2 x 2 blocks), one block all zero (scale 1).
  const int64_t R = 130, C = 129;
  std::vector<float> m(size_t(R * C));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) m[size_t(r * C + c)] = (r >= 128 && c < 128) ? 0.0f : std::sin(float(r * C + c)) * float(1 + r % 5);
  std::vector<uint8_t> qm(m.size());
  std::vector<float> sc(4);
  quantize_e4m3_blocks(m.data(), R, C, qm.data(), sc.data());
  EXPECT_EQ(sc[2], 1.0f);
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t c = 0; c < C; ++c) {
      float s2 = sc[size_t((r / 128) * 2 + c / 128)];
      float x = m[size_t(r * C + c)], y = e4m3_to_f32(qm[size_t(r * C + c)]) * s2;
      // RNE onto 3 mantissa bits: |error| <= 2^-4·|x| for normals, half the subnormal step
      // 2^-10·s below 2^-6·s.
      ASSERT_LE(std::fabs(x - y), std::max(std::fabs(x) * 0.0625f, s2 * 0x1p-10f) * 1.0001f) << r << "," << c;
    }
  }
}


// Main-model loss of (B, T+1) tokens from inference logits of a loaded model.
double inference_loss(const LoadedModel& m, const std::vector<int32_t>& tokens, int64_t B, int64_t T) {
  const int64_t V = m.config.vocab_size;
  double loss = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* seq = tokens.data() + b * (T + 1);
    Transformer model(m.config, m.weights);
    KvPool pool(model.cache_layers(), model.cache_row_dim(), 16, 16);
    SequenceCache cache(pool);
    std::vector<float> logits(size_t(T * V));
    SeqChunk chunk{&cache, seq, T};
    EXPECT_TRUE(model.forward({&chunk, 1}, logits.data(), {AttentionPath::Naive, true}).is_ok());
    loss += testing::mean_cross_entropy(logits.data(), seq + 1, T, V) / double(B);
  }
  return loss;
}

class ExportRoundTrip : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = testing::odd_shapes_v3_config();
    model_ = std::make_unique<TrainModelAdapter>(cfg_, TrainModelOptions{.batch = B, .seq_len = T, .mtp_weight = 0.3,
                                                                         .balance_alpha = 0.0});
    testing::randomize_model(model_->model(), 11);
    tokens_ = testing::make_tokens(B, T, cfg_.vocab_size, 5);
    want_ = model_->evaluate({tokens_.data(), B, T}).main;
    OptimizerOptions oo;
    oo.kind = OptimizerKind::Sgd;
    Optimizer opt(model_->params(), oo);
    CheckpointTarget target{&model_->params(), &opt, &model_->router_biases(), model_->router_bias_names(),
                            model_config_to_json(cfg_)};
    Result<std::string> ck = save_checkpoint(dir_ / "run", target, TrainState{}, 0);
    ASSERT_TRUE(ck.is_ok()) << ck.message();
    ck_ = *ck;
  }

  Result<LoadedModel> export_and_load(ExportDType dtype, int shards, const std::string& name) {
    ExportOptions o{ck_, dir_ / name, std::string(DSV3_TEST_DATA_DIR) + "/fixtures/tiny_tokenizer", dtype, shards};
    Result<ExportStats> st = export_hf_model(o);
    if (!st.is_ok()) return st.status();
    return load_model(o.out_dir);
  }

  static constexpr int64_t B = 2, T = 9;
  TempDir dir_{"export"};
  ModelConfig cfg_;
  std::unique_ptr<TrainModelAdapter> model_;
  std::vector<int32_t> tokens_;
  double want_ = 0;
  std::string ck_;
};

TEST_F(ExportRoundTrip, F32MatchesTrainModelForward) {
  Result<LoadedModel> m = export_and_load(ExportDType::F32, 1, "f32");
  ASSERT_TRUE(m.is_ok()) << m.message();
  // Same weights, f32 both ways; the paths differ in summation order only (see
  // train_model_test.cpp: 1e-5 relative bounds that; a wrong name or bias moves it by > 1e-3).
  EXPECT_NEAR(inference_loss(*m, tokens_, B, T), want_, 1e-5 * want_);
  // Router biases as F32 e_score_correction_bias with the trained values; MTP copies present.
  const TensorInfo* bias = m->checkpoint.find("model.layers.1.mlp.gate.e_score_correction_bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->dtype, DType::F32);
  float b0;
  std::memcpy(&b0, bias->data, 4);
  EXPECT_EQ(b0, model_->router_biases()[0][0]);
  const int64_t mtp = cfg_.n_layers;
  EXPECT_NE(m->checkpoint.find("model.layers." + std::to_string(mtp) + ".embed_tokens.weight"), nullptr);
  EXPECT_NE(m->checkpoint.find("model.layers." + std::to_string(mtp) + ".shared_head.head.weight"), nullptr);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "f32/tokenizer.json"));
}

TEST_F(ExportRoundTrip, Bf16AndShardedLoad) {
  Result<LoadedModel> m = export_and_load(ExportDType::BF16, 3, "bf16");
  ASSERT_TRUE(m.is_ok()) << m.message();
  EXPECT_TRUE(std::filesystem::exists(dir_ / "bf16/model.safetensors.index.json"));
  EXPECT_EQ(m->checkpoint.find("model.layers.0.self_attn.q_a_proj.weight")->dtype, DType::BF16);
  // BF16 weights carry 2^-9 relative rounding; through a 4-layer net of O(1) logits the mean
  // CE moves by ~1e-3 relative; 1e-2 leaves room without hiding a layout error (those change
  // the loss by tens of percent).
  EXPECT_NEAR(inference_loss(*m, tokens_, B, T), want_, 1e-2 * want_);
}

TEST_F(ExportRoundTrip, Fp8LayoutAndLoss) {
  Result<LoadedModel> m = export_and_load(ExportDType::FP8, 1, "fp8");
  ASSERT_TRUE(m.is_ok()) << m.message();
  EXPECT_TRUE(m->config.fp8_weights);
  const Checkpoint& ck = m->checkpoint;
  EXPECT_EQ(ck.find("model.layers.1.mlp.experts.0.up_proj.weight")->dtype, DType::F8_E4M3);
  EXPECT_EQ(ck.find("model.layers.1.mlp.experts.0.up_proj.weight_scale_inv")->dtype, DType::F32);
  EXPECT_EQ(ck.find("model.layers.3.self_attn.kv_b_proj.weight")->dtype, DType::F8_E4M3);  // MTP layer too
  EXPECT_EQ(ck.find("model.embed_tokens.weight")->dtype, DType::BF16);
  EXPECT_EQ(ck.find("model.layers.1.mlp.gate.weight")->dtype, DType::BF16);
  EXPECT_EQ(ck.find("model.layers.3.eh_proj.weight")->dtype, DType::BF16);
  EXPECT_EQ(ck.find("model.layers.1.mlp.gate.e_score_correction_bias")->dtype, DType::F32);
  // E4M3 keeps 3 mantissa bits (relative step up to 2^-4 per weight, unbiased); the mean CE of
  // this tiny net moves by a few percent at most.
  EXPECT_NEAR(inference_loss(*m, tokens_, B, T), want_, 5e-2 * want_);
}

}  // namespace
}  // namespace dsv3
