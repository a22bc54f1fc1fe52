// The MoE router (spec §3; official model.py Gate): affinities s = sigmoid(x·Wgᵀ) (or softmax
// for V2), selection on s + bias (bias only for selection), group-limited top-k, gate weights
// from the UNBIASED affinities, normalized when norm_topk_prob, times routed_scaling_factor.
// All in f32. Ties in every top-k break toward the lower index (deterministic).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace dsv3 {

struct RouterConfig {
  int64_t n_experts = 0;
  int64_t top_k = 0;
  int64_t n_groups = 1;
  int64_t top_groups = 1;
  ScoreFunc score_func = ScoreFunc::Sigmoid;
  TopkMethod method = TopkMethod::NoauxTc;
  bool normalize = true;
  float route_scale = 1.0f;

  static RouterConfig from(const ModelConfig& cfg);
};

// Routing decisions for N tokens: expert ids and gate weights, (N, top_k) each, plus the
// affinities s (N, n_experts) that training's balance loss needs.
struct Routing {
  int64_t n_tokens = 0;
  int64_t top_k = 0;
  std::vector<int32_t> experts;
  std::vector<float> weights;
  std::vector<float> scores;
  void resize(int64_t n, int64_t k, int64_t n_experts);
};

// Routes one token given its affinities `s` (n_experts) and the optional bias (empty or
// n_experts): writes top_k expert ids and weights. `work` is scratch of n_experts floats.
void route_token(int32_t* experts, float* weights, const float* s, std::span<const float> bias,
                 const RouterConfig& rc, float* work);

// Computes affinities (x (N, dim) · gateᵀ, then sigmoid/softmax) and routes every token.
void route(Routing& out, const float* x, int64_t N, const MoeWeights& w, const RouterConfig& rc);

}  // namespace dsv3
