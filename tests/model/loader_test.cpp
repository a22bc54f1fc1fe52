#include "model/loader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/numeric.h"
#include "io/atomic_file.h"
#include "support/checkpoint_writer.h"

namespace dsv3 {
namespace {

using testing::OwnedTensor;
using testing::RandomCheckpointOptions;

std::string golden(const std::string& name) { return std::string(DSV3_TEST_DATA_DIR) + "/golden/configs/" + name; }

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Element (r, c) of a loaded matrix in f32 (FP8: q · block scale), the test's own decoder.
float element(const WeightMatrix& w, int64_t r, int64_t c) {
  const uint8_t* p = static_cast<const uint8_t*>(w.data) + size_t(r * w.cols + c) * dtype_size(w.dtype);
  switch (w.dtype) {
    case DType::F32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::BF16: {
      uint16_t b;
      std::memcpy(&b, p, 2);
      return bf16_to_f32(b);
    }
    case DType::F8_E4M3:
      return e4m3_to_f32(*p) * w.scale_inv[(w.scale_row_offset + r) / 128 * w.scale_cols() + c / 128];
    default: ADD_FAILURE() << "unexpected dtype"; return 0;
  }
}

void expect_load_error(const std::string& dir, std::initializer_list<std::string> fragments) {
  auto m = load_model(dir);
  ASSERT_FALSE(m.is_ok()) << "loaded a bad checkpoint in " << dir;
  for (const std::string& f : fragments) EXPECT_NE(m.message().find(f), std::string::npos) << m.message();
}

// Writes cfg's random tensors after `edit` and expects load errors with `fragments`.
template <typename Edit>
void expect_corruption(const ModelConfig& cfg, RandomCheckpointOptions opt, Edit edit,
                       std::initializer_list<std::string> fragments) {
  std::string dir = testing::make_temp_dir("ld_bad");
  auto tensors = testing::random_tensors(cfg, opt);
  edit(tensors);
  ASSERT_TRUE(testing::write_checkpoint(dir, cfg, tensors).is_ok());
  expect_load_error(dir, fragments);
}

OwnedTensor* find(std::vector<OwnedTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return &t;
  ADD_FAILURE() << "no tensor " << name;
  return &ts[0];
}

void erase_tensor(std::vector<OwnedTensor>& ts, const std::string& name) {
  std::erase_if(ts, [&](const OwnedTensor& t) { return t.name == name; });
}

TEST(LoaderTest, LoadsEveryTestConfigInEveryDtype) {
  struct Case {
    ModelConfig cfg;
    DType dtype;
    int shards;
  };
  std::vector<Case> cases = {{testing::tiny_v3_config(), DType::F32, 1},     {testing::tiny_v3_config(), DType::BF16, 3},
                             {testing::tiny_v2_lite_config(), DType::BF16, 1}, {testing::odd_dims_config(), DType::F32, 2},
                             {testing::fp8_edge_config(), DType::F8_E4M3, 2}, {testing::tiny_v3_config(), DType::F8_E4M3, 1}};
  for (const Case& cs : cases) {
    SCOPED_TRACE(fmt::format("{} {} shards={}", cs.cfg.model_type, dtype_name(cs.dtype), cs.shards));
    const ModelConfig& c = cs.cfg;
    std::string dir = testing::make_temp_dir("ld_ok");
    RandomCheckpointOptions opt{.seed = 7, .dtype = cs.dtype, .n_shards = cs.shards};
    ASSERT_TRUE(testing::write_random_checkpoint(dir, c, opt).is_ok());
    auto loaded = load_model(dir);
    ASSERT_TRUE(loaded.is_ok()) << loaded.message();
    LoadedModel m = std::move(loaded.value());  // views survive the move
    const ModelWeights& w = m.weights;
    EXPECT_EQ(m.config.fp8_weights, cs.dtype == DType::F8_E4M3);
    ASSERT_EQ(int64_t(w.layers.size()), c.n_layers);
    ASSERT_EQ(int64_t(w.mtp_layers.size()), c.n_mtp_layers);
    EXPECT_EQ(w.embed.rows, c.vocab_size);
    EXPECT_EQ(w.head.cols, c.dim);
    EXPECT_EQ(int64_t(w.norm.size()), c.dim);
    for (int64_t l = 0; l < c.n_layers + c.n_mtp_layers; ++l) {
      const LayerWeights& lw = l < c.n_layers ? w.layers[size_t(l)] : w.mtp_layers[size_t(l - c.n_layers)];
      EXPECT_EQ(lw.is_moe, c.is_moe_layer(l));
      EXPECT_EQ(int64_t(lw.attn_norm.size()), c.dim);
      EXPECT_EQ(lw.attn.wq.empty(), c.q_lora_rank > 0);
      EXPECT_EQ(lw.attn.wq_a.empty(), c.q_lora_rank == 0);
      EXPECT_EQ(int64_t(lw.attn.q_norm.size()), c.q_lora_rank);
      EXPECT_EQ(lw.attn.wkv_b.rows, c.n_heads * (c.qk_nope_head_dim + c.v_head_dim));
      EXPECT_EQ(lw.attn.wo.cols, c.n_heads * c.v_head_dim);
      EXPECT_EQ(lw.attn.wo.dtype == DType::F8_E4M3, cs.dtype == DType::F8_E4M3);
      EXPECT_EQ(lw.attn.wo.scale_inv != nullptr, cs.dtype == DType::F8_E4M3);
      if (lw.is_moe) {
        EXPECT_EQ(int64_t(lw.moe.experts.size()), c.n_routed_experts);
        EXPECT_EQ(lw.moe.experts.back().w2.cols, c.moe_inter_dim);
        EXPECT_EQ(int64_t(lw.moe.bias.size()), c.has_gate_bias() ? c.n_routed_experts : 0);
        EXPECT_EQ(lw.moe.has_shared, c.n_shared_experts > 0);
        EXPECT_EQ(lw.moe.shared.w1.rows, c.moe_inter_dim * c.n_shared_experts);
        EXPECT_EQ(lw.moe.gate.dtype, cs.dtype == DType::F32 ? DType::F32 : DType::BF16);
      } else {
        EXPECT_EQ(lw.mlp.w3.rows, c.inter_dim);
      }
      if (l >= c.n_layers) {
        EXPECT_EQ(lw.mtp.eh_proj.cols, 2 * c.dim);
        EXPECT_EQ(int64_t(lw.mtp.head_norm.size()), c.dim);
        EXPECT_FALSE(lw.mtp.embed.empty());
      }
    }
    // Values: the loaded views decode to the generator's f32 values within the storage
    // format's rounding: BF16 relative 2^-8 (8 significant bits, RNE); E4M3 relative 2^-4 of the
    // value plus the block's subnormal step (amax/448 · 2^-9) for tiny values.
    auto ref = testing::random_tensors(c, {.seed = 7, .dtype = DType::F32});
    const LayerWeights& l0 = w.layers[0];
    const LayerWeights& last = w.layers.back();
    std::vector<std::pair<std::string, const WeightMatrix*>> checks = {
        {"model.embed_tokens.weight", &w.embed},
        {"model.layers.0.self_attn.kv_a_proj_with_mqa.weight", &l0.attn.wkv_a},
        {"model.layers.0.self_attn.o_proj.weight", &l0.attn.wo},
        {fmt::format("model.layers.{}.mlp.experts.{}.down_proj.weight", c.n_layers - 1, c.n_routed_experts - 1),
         &last.moe.experts.back().w2}};
    for (const auto& [name, wm] : checks) {
      const OwnedTensor* t = find(ref, name);
      const float* v = reinterpret_cast<const float*>(t->bytes.data());
      float amax = 0;
      for (int64_t i = 0; i < wm->rows * wm->cols; ++i) amax = std::max(amax, std::fabs(v[i]));
      for (int64_t r = 0; r < wm->rows; r += 7) {
        for (int64_t col = 0; col < wm->cols; col += 5) {
          float want = v[r * wm->cols + col], got = element(*wm, r, col);
          float tol = wm->dtype == DType::F32    ? 0.0f
                      : wm->dtype == DType::BF16 ? std::fabs(want) * 0x1p-8f
                                                 : std::fabs(want) * 0x1p-4f + amax / 448 * 0x1p-9f;
          ASSERT_LE(std::fabs(got - want), tol) << name << " at " << r << "," << col;
        }
      }
    }
    const OwnedTensor* n0 = find(ref, "model.layers.0.input_layernorm.weight");
    float want0 = reinterpret_cast<const float*>(n0->bytes.data())[0];
    EXPECT_NEAR(l0.attn_norm[0], want0, cs.dtype == DType::F32 ? 0.0f : std::fabs(want0) * 0x1p-8f);
  }
}

TEST(LoaderTest, FP8EdgeBlocksHaveCeilScaleShapes) {
  ModelConfig c = testing::fp8_edge_config();
  auto ts = testing::random_tensors(c, {.dtype = DType::F8_E4M3});
  const OwnedTensor* s = find(ts, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv");
  EXPECT_EQ(s->shape, (std::vector<int64_t>{2, 2}));  // (160 + 16) x 200 -> ceil(176/128) x ceil(200/128)
  EXPECT_EQ(find(ts, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight")->dtype, DType::F8_E4M3);
  EXPECT_EQ(find(ts, "model.embed_tokens.weight")->dtype, DType::BF16);
  EXPECT_EQ(find(ts, "model.layers.1.mlp.gate.weight")->dtype, DType::BF16);
  EXPECT_EQ(find(ts, "model.layers.2.eh_proj.weight")->dtype, DType::BF16);
  EXPECT_EQ(find(ts, "model.layers.1.mlp.gate.e_score_correction_bias")->dtype, DType::F32);
}

TEST(LoaderTest, TiedEmbeddingsAndAbsentMtpCopies) {
  ModelConfig c = testing::odd_dims_config();
  c.tie_word_embeddings = true;
  std::string dir = testing::make_temp_dir("ld_tie");
  ASSERT_TRUE(testing::write_random_checkpoint(dir, c, {.mtp_copies = false}).is_ok());
  auto m = load_model(dir);
  ASSERT_TRUE(m.is_ok()) << m.message();
  EXPECT_EQ(m->weights.head.data, m->weights.embed.data);
  EXPECT_TRUE(m->weights.mtp_layers[0].mtp.embed.empty());
  EXPECT_TRUE(m->weights.mtp_layers[0].mtp.head.empty());
}

TEST(LoaderTest, CorruptionsGiveOneClearError) {
  ModelConfig c = testing::tiny_v3_config();
  const std::string q_b = "model.layers.1.self_attn.q_b_proj.weight";
  expect_corruption(c, {}, [&](auto& ts) { erase_tensor(ts, q_b); }, {"missing tensor '" + q_b + "'", "[96, 48]"});
  expect_corruption(c, {}, [&](auto& ts) { erase_tensor(ts, "model.layers.1.mlp.gate.e_score_correction_bias"); },
                    {"missing tensor 'model.layers.1.mlp.gate.e_score_correction_bias'"});
  expect_corruption(c, {}, [&](auto& ts) { ts.push_back({"model.layers.9.extra.weight", DType::F32, {1}, {0, 0, 0, 0}}); },
                    {"model.safetensors", "unexpected tensor 'model.layers.9.extra.weight'"});
  expect_corruption(c, {}, [&](auto& ts) { ts.push_back({"model.layers.1.mlp.experts.8.up_proj.weight", DType::F32, {1}, {0, 0, 0, 0}}); },
                    {"unexpected tensor 'model.layers.1.mlp.experts.8.up_proj.weight'", "8 routed experts"});
  expect_corruption(c, {}, [&](auto& ts) {
        OwnedTensor* t = find(ts, q_b);
        t->shape = {48, 96};
      },
      {"model.safetensors", "'" + q_b + "' has shape [48, 96], expected [96, 48]"});
  expect_corruption(c, {}, [&](auto& ts) {
        OwnedTensor* t = find(ts, "model.norm.weight");
        t->dtype = DType::I32;
      },
      {"'model.norm.weight' has dtype I32", "norm weight must be F32, BF16 or F16"});
  expect_corruption(c, {}, [&](auto& ts) {
        OwnedTensor* t = find(ts, "model.layers.0.input_layernorm.weight");
        t->dtype = DType::F8_E4M3;
        t->bytes.resize(t->bytes.size() / 4);
      },
      {"'model.layers.0.input_layernorm.weight' has dtype F8_E4M3"});
  // An FP8 embedding is not part of the format (spec §5.2 keeps it BF16).
  expect_corruption(c, {.dtype = DType::F8_E4M3}, [&](auto& ts) {
        OwnedTensor* t = find(ts, "model.embed_tokens.weight");
        t->dtype = DType::F8_E4M3;
        t->bytes.resize(t->bytes.size() / 2);
      },
      {"'model.embed_tokens.weight' has dtype F8_E4M3", "an embedding must be F32, BF16 or F16"});

  RandomCheckpointOptions fp8{.dtype = DType::F8_E4M3};
  const std::string wo = "model.layers.2.self_attn.o_proj.weight";
  expect_corruption(c, fp8, [&](auto& ts) { erase_tensor(ts, wo + "_scale_inv"); },
                    {"model.safetensors", "FP8 tensor '" + wo + "' has no block scale tensor '" + wo + "_scale_inv'"});
  expect_corruption(c, fp8, [&](auto& ts) {
        OwnedTensor* s = find(ts, wo + "_scale_inv");
        s->shape = {1, 2};
        s->bytes.resize(8);
      },
      {"FP8 scale '" + wo + "_scale_inv' is F32 of shape [1, 2], expected F32 of shape [1, 1]"});
  expect_corruption(c, fp8, [&](auto& ts) { erase_tensor(ts, wo); }, {"missing tensor '" + wo + "'", "1 more problem"});
  const std::string stray = "model.layers.0.self_attn.q_c_proj.weight_scale_inv";
  expect_corruption(c, fp8, [&](auto& ts) { ts.push_back({stray, DType::F32, {1, 1}, {0, 0, 128, 63}}); },
                    {"model.safetensors", "FP8 scale '" + stray + "' has no weight"});
  expect_corruption(c, {}, [&](auto& ts) {
        ts.push_back({wo + "_scale_inv", DType::F32, {1, 1}, {0, 0, 128, 63}});
      },
      {"'" + wo + "_scale_inv' is an FP8 block scale but its weight", "is F32, not F8_E4M3"});
  // A config that does not match the checkpoint: many problems, one message with a count.
  std::string dir = testing::make_temp_dir("ld_mismatch");
  ASSERT_TRUE(testing::write_random_checkpoint(dir, testing::tiny_v2_lite_config()).is_ok());
  ModelConfig other = testing::tiny_v3_config();
  ASSERT_TRUE(write_file_atomic(dir + "/config.json", testing::config_to_json(other)).is_ok());
  expect_load_error(dir, {"more problems"});
  ASSERT_TRUE(write_file_atomic(dir + "/config.json", "{\"model_type\": 3}").is_ok());
  expect_load_error(dir, {"config.json: field 'model_type' must be a string"});
}

TEST(LoaderTest, FP8ScaleShapeMismatchIsReported) {
  ModelConfig c = testing::fp8_edge_config();
  const std::string wkv = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight";
  expect_corruption(c, {.dtype = DType::F8_E4M3}, [&](auto& ts) {
        OwnedTensor* s = find(ts, wkv + "_scale_inv");
        s->shape = {1, 4};
      },
      {"FP8 scale '" + wkv + "_scale_inv' is F32 of shape [1, 4], expected F32 of shape [2, 2] (ceil of [176, 200] / 128)"});
}

TEST(LoaderTest, MisalignedTensorsAreCopied) {
  // Our writer keeps every tensor aligned to its element size ...
  ModelConfig c = testing::odd_dims_config();
  std::string dir = testing::make_temp_dir("ld_align");
  ASSERT_TRUE(testing::write_random_checkpoint(dir, c).is_ok());
  auto m = load_model(dir);
  ASSERT_TRUE(m.is_ok()) << m.message();
  EXPECT_TRUE(m->aligned_copies.empty());
  float want = element(m->weights.layers[1].attn.wo, 5, 7);
  float want_norm = m->weights.norm[3];
  // ... but the format allows any header length: one more space shifts all data by one byte.
  std::string path = dir + "/model.safetensors";
  std::string bytes = read_text_file(path).value();
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  std::string shifted(8, '\0');
  uint64_t n1 = n + 1;
  std::memcpy(shifted.data(), &n1, 8);
  shifted += bytes.substr(8, n) + " " + bytes.substr(8 + n);
  ASSERT_TRUE(write_file_atomic(path, shifted).is_ok());
  auto m2 = load_model(dir);
  ASSERT_TRUE(m2.is_ok()) << m2.message();
  EXPECT_FALSE(m2->aligned_copies.empty());
  const WeightMatrix& wo = m2->weights.layers[1].attn.wo;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(wo.data) % 4, 0u);
  EXPECT_EQ(element(wo, 5, 7), want);
  EXPECT_EQ(m2->weights.norm[3], want_norm);
}

// The tensor inventory of the full 671B checkpoint (spec §5.1, §5.6): 91,991 tensors incl.
// scales, 684,531,386,000 elements, 688,574,839,360 bytes with the published dtypes.
TEST(LoaderTest, DeepSeekV3InventoryMatchesPublishedCheckpoint) {
  auto cfg = load_model_config(golden("deepseek-v3-671b.json"));
  ASSERT_TRUE(cfg.is_ok());
  int64_t tensors = 0, elements = 0, bytes = 0;
  for (const TensorSpec& s : expected_tensors(cfg.value())) {
    int64_t n = numel(s.shape);
    tensors += 1;
    elements += n;
    if (s.fp8_allowed) {
      int64_t sn = numel(fp8_scale_shape(s.shape[0], s.shape[1]));
      tensors += 1;
      elements += sn;
      bytes += n + 4 * sn;
    } else {
      bytes += n * (s.role == TensorRole::RouterBias ? 4 : 2);
    }
  }
  EXPECT_EQ(tensors, 91991);
  EXPECT_EQ(elements, 684531386000);
  EXPECT_EQ(bytes, 688574839360);
}

}  // namespace
}  // namespace dsv3
