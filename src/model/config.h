// ModelConfig: every config.json field that changes the computation, under the official
// reference's names (model.py ModelArgs), plus derived dimensions. config.cpp owns the single
// table that maps Hugging Face keys to these fields and validates them.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace dsv3 {

enum class ScoreFunc { Sigmoid, Softmax };
// noaux_tc: biased scores, group score = sum of top-2 (V3). group_limited_greedy: group score =
// max (V2 236B). greedy: plain top-k over all experts (V2-Lite).
enum class TopkMethod { NoauxTc, GroupLimitedGreedy, Greedy };

struct YarnConfig {
  bool enabled = false;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

struct ModelConfig {
  std::string model_type;  // "deepseek_v3", "deepseek_v2" or "kimi_k2"
  int64_t vocab_size = 0;
  int64_t dim = 0;            // hidden_size
  int64_t inter_dim = 0;      // intermediate_size (dense MLP)
  int64_t moe_inter_dim = 0;  // moe_intermediate_size (one routed expert)
  int64_t n_layers = 0;       // num_hidden_layers
  int64_t n_mtp_layers = 0;   // num_nextn_predict_layers
  int64_t n_dense_layers = 0; // first_k_dense_replace
  int64_t moe_layer_freq = 1;
  int64_t n_heads = 0;
  int64_t q_lora_rank = 0;  // 0: no low-rank query path (single q_proj)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t n_routed_experts = 0;  // 0: no MoE layers at all
  int64_t n_shared_experts = 0;
  int64_t n_activated_experts = 0;  // num_experts_per_tok
  int64_t n_expert_groups = 1;      // n_group
  int64_t n_limited_groups = 1;     // topk_group
  ScoreFunc score_func = ScoreFunc::Sigmoid;
  TopkMethod topk_method = TopkMethod::NoauxTc;
  bool norm_topk_prob = true;
  double route_scale = 1.0;  // routed_scaling_factor
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 4096;
  YarnConfig yarn;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 1;
  bool fp8_weights = false;  // quantization_config: fp8 e4m3, 128x128 blocks

  // Derived.
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool has_gate_bias() const { return topk_method == TopkMethod::NoauxTc; }
  // model.py / remote code: MoE iff experts exist, idx >= first_k_dense_replace, idx % freq == 0.
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= n_dense_layers && layer % moe_layer_freq == 0;
  }
  // Latent KV cache values per token per layer: kv_lora_rank + qk_rope_head_dim (576 for 671B).
  int64_t kv_cache_dim() const { return kv_lora_rank + qk_rope_head_dim; }
};

// Parses and validates the text of a Hugging Face config.json.
Result<ModelConfig> parse_model_config(const std::string& json_text);
// Same; `source` (the file name) prefixes every error message.
Result<ModelConfig> parse_model_config(const std::string& json_text, const std::string& source);
// Reads DIR/config.json (or a path to a .json file).
Result<ModelConfig> load_model_config(const std::string& path);
// A Hugging Face config.json equivalent to `cfg`: parse_model_config(model_config_to_json(c))
// gives back c. Used by checkpoint export and by tests that write checkpoints.
std::string model_config_to_json(const ModelConfig& cfg);
// Checks the invariants parse_model_config guarantees (for configs built in code).
Status validate_model_config(const ModelConfig& cfg, const std::string& source);

}  // namespace dsv3
