#include "model/config.h"

#include <gtest/gtest.h>

#include "io/atomic_file.h"
#include "io/json.h"
#include "support/checkpoint_writer.h"

namespace dsv3 {
namespace {

std::string golden(const std::string& name) { return std::string(DSV3_TEST_DATA_DIR) + "/golden/configs/" + name; }

Json golden_json(const std::string& name) { return Json::parse(read_text_file(golden(name)).value()); }

// Parses `j` after `edit`, expecting an error that contains every fragment.
void expect_error(Json j, std::initializer_list<const char*> fragments) {
  auto r = parse_model_config(j.dump(), "config.json");
  ASSERT_FALSE(r.is_ok()) << j.dump();
  for (const char* f : fragments) EXPECT_NE(r.message().find(f), std::string::npos) << r.message();
  EXPECT_EQ(r.message().rfind("config.json: ", 0), 0u) << r.message();
}

TEST(ConfigTest, ParsesDeepSeekV3) {
  auto r = load_model_config(golden("deepseek-v3-671b.json"));
  ASSERT_TRUE(r.is_ok()) << r.message();
  const ModelConfig& c = r.value();
  EXPECT_EQ(c.model_type, "deepseek_v3");
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.dim, 7168);
  EXPECT_EQ(c.inter_dim, 18432);
  EXPECT_EQ(c.moe_inter_dim, 2048);
  EXPECT_EQ(c.n_layers, 61);
  EXPECT_EQ(c.n_mtp_layers, 1);
  EXPECT_EQ(c.n_dense_layers, 3);
  EXPECT_EQ(c.n_heads, 128);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.v_head_dim, 128);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_EQ(c.n_activated_experts, 8);
  EXPECT_EQ(c.n_expert_groups, 8);
  EXPECT_EQ(c.n_limited_groups, 4);
  EXPECT_EQ(c.score_func, ScoreFunc::Sigmoid);
  EXPECT_EQ(c.topk_method, TopkMethod::NoauxTc);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.route_scale, 2.5);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.max_position_embeddings, 163840);
  EXPECT_TRUE(c.yarn.enabled);
  EXPECT_EQ(c.yarn.factor, 40.0);  // written as the integer 40
  EXPECT_EQ(c.yarn.original_max_position_embeddings, 4096);
  EXPECT_EQ(c.yarn.beta_fast, 32.0);
  EXPECT_EQ(c.yarn.beta_slow, 1.0);
  EXPECT_EQ(c.yarn.mscale, 1.0);
  EXPECT_EQ(c.yarn.mscale_all_dim, 1.0);
  EXPECT_TRUE(c.fp8_weights);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.kv_cache_dim(), 576);
  EXPECT_FALSE(c.is_moe_layer(2));
  EXPECT_TRUE(c.is_moe_layer(3));
  EXPECT_TRUE(c.is_moe_layer(61));  // the MTP layer is a MoE layer
}

TEST(ConfigTest, ParsesDeepSeekV2Lite) {
  auto r = load_model_config(golden("deepseek-v2-lite.json"));
  ASSERT_TRUE(r.is_ok()) << r.message();
  const ModelConfig& c = r.value();
  EXPECT_EQ(c.model_type, "deepseek_v2");
  EXPECT_EQ(c.q_lora_rank, 0);  // null: single q_proj
  EXPECT_EQ(c.score_func, ScoreFunc::Softmax);
  EXPECT_EQ(c.topk_method, TopkMethod::Greedy);
  EXPECT_FALSE(c.has_gate_bias());
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.n_mtp_layers, 0);
  EXPECT_EQ(c.n_shared_experts, 2);
  EXPECT_EQ(c.n_activated_experts, 6);
  EXPECT_EQ(c.yarn.mscale, 0.707);
  EXPECT_EQ(c.yarn.mscale_all_dim, 0.707);
  EXPECT_FALSE(c.fp8_weights);
  EXPECT_EQ(c.bos_token_id, 100000);
  EXPECT_EQ(c.eos_token_id, 100001);
}

TEST(ConfigTest, ParsesBenchAndKimiConfigs) {
  auto small = load_model_config(golden("bench-small.json"));
  ASSERT_TRUE(small.is_ok()) << small.message();
  EXPECT_EQ(small->n_routed_experts, 64);
  EXPECT_EQ(small->yarn.factor, 4.0);
  EXPECT_TRUE(small->fp8_weights);
  auto train = load_model_config(golden("tiny-train.json"));
  ASSERT_TRUE(train.is_ok()) << train.message();
  EXPECT_FALSE(train->yarn.enabled);  // rope_scaling: null
  EXPECT_FALSE(train->fp8_weights);
  EXPECT_EQ(train->q_lora_rank, 128);
  auto kimi = load_model_config(golden("kimi-k2-like.json"));
  ASSERT_TRUE(kimi.is_ok()) << kimi.message();
  EXPECT_EQ(kimi->model_type, "kimi_k2");
  EXPECT_EQ(kimi->n_heads, 64);
  EXPECT_EQ(kimi->n_expert_groups, 1);
  EXPECT_EQ(kimi->rope_theta, 50000.0);
  EXPECT_EQ(kimi->yarn.beta_fast, 1.0);
}

TEST(ConfigTest, AcceptsRopeParametersAndRopeType) {
  Json j = golden_json("deepseek-v3-671b.json");
  Json rp = j["rope_scaling"];
  rp.erase("type");
  rp["rope_type"] = "yarn";
  rp["rope_theta"] = 20000;
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = rp;
  auto r = parse_model_config(j.dump());
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_TRUE(r->yarn.enabled);
  EXPECT_EQ(r->yarn.factor, 40.0);
  EXPECT_EQ(r->rope_theta, 20000.0);

  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
  r = parse_model_config(j.dump());
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_FALSE(r->yarn.enabled);

  // Absent mscale keys: mscale 1, mscale_all_dim 0 (the DeepSeek rotary class defaults).
  j = golden_json("deepseek-v3-671b.json");
  j["rope_scaling"].erase("mscale");
  j["rope_scaling"].erase("mscale_all_dim");
  r = parse_model_config(j.dump());
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_EQ(r->yarn.mscale, 1.0);
  EXPECT_EQ(r->yarn.mscale_all_dim, 0.0);
}

TEST(ConfigTest, DefaultsAndNulls) {
  Json j = golden_json("deepseek-v3-671b.json");
  for (const char* k : {"n_group", "topk_group", "num_nextn_predict_layers", "routed_scaling_factor", "moe_layer_freq",
                        "first_k_dense_replace", "quantization_config", "rope_scaling", "eos_token_id"}) {
    j.erase(k);
  }
  j["n_group"] = nullptr;
  j["q_lora_rank"] = nullptr;
  j["n_routed_experts"] = 256;
  j["topk_group"] = nullptr;
  auto r = parse_model_config(j.dump());
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_EQ(r->n_expert_groups, 1);
  EXPECT_EQ(r->n_limited_groups, 1);
  EXPECT_EQ(r->n_mtp_layers, 0);
  EXPECT_EQ(r->route_scale, 1.0);
  EXPECT_EQ(r->q_lora_rank, 0);
  EXPECT_FALSE(r->fp8_weights);
  EXPECT_FALSE(r->yarn.enabled);
  EXPECT_TRUE(r->is_moe_layer(0));

  j["n_routed_experts"] = nullptr;  // a dense model
  j["num_experts_per_tok"] = nullptr;
  r = parse_model_config(j.dump());
  ASSERT_TRUE(r.is_ok()) << r.message();
  EXPECT_FALSE(r->is_moe_layer(10));

  j["eos_token_id"] = Json::array({7, 8});
  EXPECT_EQ(parse_model_config(j.dump())->eos_token_id, 7);
}

TEST(ConfigTest, RejectsBadFieldsNamingThem) {
  Json v3 = golden_json("deepseek-v3-671b.json");
  auto with = [&](const char* key, Json value) {
    Json j = v3;
    if (value.is_discarded()) j.erase(key);
    else j[key] = value;
    return j;
  };
  expect_error(with("hidden_size", "abc"), {"field 'hidden_size' must be a positive integer", "got \"abc\""});
  expect_error(with("hidden_size", 0), {"'hidden_size'", "positive"});
  expect_error(with("hidden_size", Json(Json::value_t::discarded)), {"missing required field 'hidden_size'"});
  expect_error(with("vocab_size", -5), {"'vocab_size'"});
  expect_error(with("num_attention_heads", 1.5), {"'num_attention_heads'"});
  expect_error(with("qk_rope_head_dim", 63), {"'qk_rope_head_dim'", "even"});
  expect_error(with("num_experts_per_tok", 300), {"num_experts_per_tok", "256"});
  expect_error(with("n_group", 7), {"n_routed_experts (256)", "n_group (7)"});
  expect_error(with("topk_group", 9), {"topk_group (9)", "n_group (8)"});
  expect_error(with("model_type", "llama"), {"'model_type'", "\"llama\""});
  expect_error(with("architectures", Json::array({"DeepseekV2ForCausalLM"})), {"'architectures'"});
  expect_error(with("scoring_func", "relu"), {"'scoring_func'", "sigmoid"});
  expect_error(with("topk_method", "random"), {"'topk_method'"});
  expect_error(with("norm_topk_prob", "yes"), {"'norm_topk_prob'"});
  expect_error(with("rms_norm_eps", -1), {"'rms_norm_eps'"});
  expect_error(with("hidden_act", "gelu"), {"'hidden_act'"});
  expect_error(with("intermediate_size", Json(Json::value_t::discarded)), {"'intermediate_size'", "dense"});
  expect_error(with("rope_scaling", Json{{"type", "linear"}, {"factor", 2}}), {"'rope_scaling.type'", "yarn"});
  expect_error(with("rope_scaling", Json{{"type", "yarn"}}), {"'rope_scaling.factor'"});
  expect_error(with("rope_scaling", Json{{"type", "yarn"}, {"factor", "big"}}), {"'rope_scaling.factor'", "\"big\""});
  expect_error(with("rope_scaling", Json{{"type", "yarn"}, {"factor", 0.5}}), {"'rope_scaling.factor'"});
  expect_error(with("rope_scaling", Json::array()), {"'rope_scaling'", "object"});

  Json q = v3;
  q["quantization_config"]["weight_block_size"] = {64, 64};
  expect_error(q, {"'quantization_config.weight_block_size'", "[128, 128]"});
  q = v3;
  q["quantization_config"]["quant_method"] = "gptq";
  expect_error(q, {"'quantization_config.quant_method'", "\"gptq\""});
  q = v3;
  q["quantization_config"]["fmt"] = "e5m2";
  expect_error(q, {"'quantization_config.fmt'"});

  Json small = v3;  // noaux_tc needs >= 2 experts per group when groups exist
  small["n_routed_experts"] = 8;
  small["num_experts_per_tok"] = 1;
  small["topk_group"] = 2;
  expect_error(small, {"noaux_tc", "at least 2 experts"});
  small["n_group"] = 1;
  small["topk_group"] = 1;
  EXPECT_TRUE(parse_model_config(small.dump()).is_ok());

  EXPECT_FALSE(parse_model_config("[]").is_ok());
  EXPECT_FALSE(parse_model_config("{").is_ok());
  auto missing = load_model_config("/nonexistent/dir");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.message().find("/nonexistent/dir"), std::string::npos);
}

TEST(ConfigTest, WrittenConfigsRoundTrip) {
  for (const ModelConfig& c : {testing::tiny_v3_config(), testing::tiny_v2_lite_config(), testing::odd_dims_config(),
                               testing::fp8_edge_config(), load_model_config(golden("deepseek-v3-671b.json")).value(),
                               load_model_config(golden("kimi-k2-like.json")).value()}) {
    ASSERT_TRUE(validate_model_config(c, "test").is_ok()) << validate_model_config(c, "test").message();
    std::string text = testing::config_to_json(c);
    auto r = parse_model_config(text);
    ASSERT_TRUE(r.is_ok()) << r.message() << "\n" << text;
    // Writing again gives identical text, and every field survived.
    EXPECT_EQ(testing::config_to_json(r.value()), text);
    const ModelConfig& d = r.value();
    EXPECT_EQ(d.model_type, c.model_type);
    EXPECT_EQ(d.q_lora_rank, c.q_lora_rank);
    EXPECT_EQ(d.v_head_dim, c.v_head_dim);
    EXPECT_EQ(d.n_routed_experts, c.n_routed_experts);
    EXPECT_EQ(d.score_func, c.score_func);
    EXPECT_EQ(d.topk_method, c.topk_method);
    EXPECT_EQ(d.norm_topk_prob, c.norm_topk_prob);
    EXPECT_EQ(d.route_scale, c.route_scale);
    EXPECT_EQ(d.yarn.enabled, c.yarn.enabled);
    EXPECT_EQ(d.yarn.factor, c.yarn.factor);
    EXPECT_EQ(d.yarn.mscale_all_dim, c.yarn.mscale_all_dim);
    EXPECT_EQ(d.yarn.original_max_position_embeddings, c.yarn.original_max_position_embeddings);
    EXPECT_EQ(d.fp8_weights, c.fp8_weights);
    EXPECT_EQ(d.eos_token_id, c.eos_token_id);
    EXPECT_EQ(d.n_mtp_layers, c.n_mtp_layers);
  }
}

}  // namespace
}  // namespace dsv3
