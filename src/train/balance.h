// Expert-load bookkeeping for MoE training (spec training §1.2, §1.5): the auxiliary-loss-free
// bias update and the load-balance metrics. Pure functions over per-layer routing counts.
//
// Bias update, per MoE layer, once per optimizer step with the counts of the whole step:
//   c̄ = Σ_i c_i / N,  e_i = c̄ − c_i,  b_i ← b_i + γ·sign(e_i)  (sign(0) = 0)
// The sign is taken in integers (sign(Σc − N·c_i)), so an exactly balanced expert never moves.
// MaxVio = (max_i c_i − c̄) / c̄, reported per layer and averaged over layers.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace dsv3 {

// b_i += gamma · sign(mean − c_i). gamma = 0 leaves the bias unchanged.
void update_router_bias(std::span<float> bias, std::span<const int64_t> counts, float gamma);

struct LayerLoadStats {
  double max_vio = 0;   // (max − mean) / mean; 0 when nothing was routed
  double min_rel = 0;   // min load / mean load
  double max_rel = 0;   // max load / mean load
  int64_t zero_experts = 0;  // experts that got no token
  float bias_min = 0, bias_max = 0;
};

LayerLoadStats layer_load_stats(std::span<const int64_t> counts, std::span<const float> bias);

struct LoadSummary {
  double max_vio_mean = 0;  // MaxVio_batch averaged over the layers that routed tokens
                            // (an MTP block trained with weight 0 routes none and is left out)
  double max_vio_max = 0;   // the worst layer
  double min_rel = 0;       // min over layers of the min relative load
  double max_rel = 0;       // max over layers of the max relative load
  int64_t zero_experts = 0; // summed over layers
  float bias_min = 0, bias_max = 0;
  std::vector<LayerLoadStats> layers;
};

LoadSummary summarize_load(const std::vector<std::vector<int64_t>>& counts,
                           const std::vector<std::vector<float>>& biases);

// Adds `more` into `acc` (shapes must match, or acc is empty and becomes a copy).
void accumulate_counts(std::vector<std::vector<int64_t>>& acc, const std::vector<std::vector<int64_t>>& more);

}  // namespace dsv3
