// Small model configurations for tests: shapes chosen to break hidden assumptions (head count
// not a power of two, v_head_dim != qk_nope_head_dim, dims not multiples of 128 or of 8).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dsv3::testing {

// DeepSeek-V3 style: low-rank q, sigmoid noaux_tc group-limited routing with a correction bias,
// YaRN with positions past original_max_position_embeddings, one MTP module.
inline ModelConfig odd_shapes_v3_config() {
  ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = 97;
  c.dim = 40;
  c.inter_dim = 56;
  c.moe_inter_dim = 12;
  c.n_layers = 3;
  c.n_mtp_layers = 1;
  c.n_dense_layers = 1;
  c.n_heads = 3;
  c.q_lora_rank = 24;
  c.kv_lora_rank = 20;
  c.qk_nope_head_dim = 10;
  c.qk_rope_head_dim = 6;
  c.v_head_dim = 7;
  c.n_routed_experts = 8;
  c.n_shared_experts = 1;
  c.n_activated_experts = 3;
  c.n_expert_groups = 4;
  c.n_limited_groups = 2;
  c.route_scale = 2.5;
  c.max_position_embeddings = 256;
  c.yarn = {true, 4.0, 8, 32.0, 1.0, 1.0, 1.0};
  return c;
}

// DeepSeek-V2-Lite style: direct q projection, softmax greedy routing without bias or
// normalization, YaRN mscale 0.707.
inline ModelConfig odd_shapes_v2_lite_config() {
  ModelConfig c = odd_shapes_v3_config();
  c.model_type = "deepseek_v2";
  c.n_mtp_layers = 0;
  c.q_lora_rank = 0;
  c.score_func = ScoreFunc::Softmax;
  c.topk_method = TopkMethod::Greedy;
  c.n_expert_groups = 1;
  c.n_limited_groups = 1;
  c.norm_topk_prob = false;
  c.route_scale = 1.0;
  c.n_shared_experts = 2;
  c.yarn = {true, 4.0, 8, 32.0, 1.0, 0.707, 0.707};
  return c;
}

// max |a - b| / std(b): the error measure the logits checks use.
inline double max_err_over_std(const std::vector<float>& a, const std::vector<float>& b) {
  double mean = 0, var = 0, err = 0;
  for (float v : b) mean += v;
  mean /= double(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    var += (b[i] - mean) * (b[i] - mean);
    err = std::max(err, std::fabs(double(a[i]) - double(b[i])));
  }
  return err / std::sqrt(var / double(b.size()));
}

// Mean cross-entropy of logits (n, V) against targets, in double: the reference loss.
inline double mean_cross_entropy(const float* logits, const int32_t* targets, int64_t n, int64_t V) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* l = logits + i * V;
    double mx = l[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(l[v]));
    double se = 0.0;
    for (int64_t v = 0; v < V; ++v) se += std::exp(double(l[v]) - mx);
    sum += std::log(se) + mx - double(l[targets[i]]);
  }
  return sum / double(n);
}

}  // namespace dsv3::testing
