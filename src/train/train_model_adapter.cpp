#include "train/train_model_adapter.h"

#include <fmt/format.h>

#include "model/model_stats.h"

namespace dsv3 {

TrainModelAdapter::TrainModelAdapter(const ModelConfig& cfg, const TrainModelOptions& opt)
    : cfg_(cfg), opt_(opt), model_(cfg, opt) {}

std::vector<std::string> TrainModelAdapter::router_bias_names() const {
  // TrainModel keeps one bias vector per MoE layer, main layers first, then MTP layers.
  std::vector<std::string> names;
  for (int64_t l = 0; l < cfg_.n_layers + cfg_.n_mtp_layers; ++l)
    if (cfg_.is_moe_layer(l)) names.push_back(fmt::format("model.layers.{}.mlp.gate.e_score_correction_bias", l));
  return names;
}

int64_t TrainModelAdapter::active_params() const {
  ModelStats s = compute_model_stats(cfg_);
  int64_t n = s.active.total() - s.active.embedding;
  if (opt_.mtp_weight != 0.0) n += s.mtp_active.total();
  return n;
}

double TrainModelAdapter::flops_per_token(int64_t seq_len) const {
  const int64_t attn_layers = cfg_.n_layers + (opt_.mtp_weight != 0.0 ? cfg_.n_mtp_layers : 0);
  const double attention = 6.0 * double(attn_layers) * double(cfg_.n_heads) *
                           double(cfg_.qk_head_dim() + cfg_.v_head_dim) * double(seq_len + 1) / 2.0;
  return 6.0 * double(active_params()) + attention;
}

std::string TrainModelAdapter::flops_note() const {
  return fmt::format("6 x {} active params (head and MTP included, embedding lookups not) + causal attention "
                     "6·L·H·(d_qk+d_v)·(T+1)/2",
                     active_params());
}

}  // namespace dsv3
