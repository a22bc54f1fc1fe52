// TrainModel (the DeepSeek-V3 training model) seen through the Trainable seam the Trainer
// drives. Adds what the loop needs beyond the model math: checkpoint names of the router
// biases and the FLOP count for MFU.
//
// FLOPs per trained token (forward + backward = 3 × forward):
//   6 · N_active                      matmuls: every attention, dense-MLP and router weight, the
//                                     top-K routed plus shared experts of each MoE layer, the
//                                     head (and the MTP layers when λ ≠ 0); embeddings are
//                                     lookups and not counted
// + 6 · L_attn · H · (d_qk + d_v) · (T + 1)/2
//                                     causal attention scores and weighted sums (2 FLOPs per
//                                     multiply-add, average context (T + 1)/2, per layer run)
// Norms, activations, softmax and routing are not counted (the usual MFU convention).
#pragma once

#include <string>
#include <vector>

#include "train/train_model.h"
#include "train/trainable.h"

namespace dsv3 {

class TrainModelAdapter : public Trainable {
 public:
  TrainModelAdapter(const ModelConfig& cfg, const TrainModelOptions& opt);

  TrainModel& model() { return model_; }
  ParamSet& params() override { return model_.params(); }
  LossParts forward_backward(const TrainBatch& batch) override { return model_.forward_backward(batch); }
  LossParts evaluate(const TrainBatch& batch) override { return model_.evaluate(batch); }
  std::vector<std::vector<int64_t>> expert_counts() const override { return model_.expert_counts(); }
  std::vector<std::vector<float>>& router_biases() override { return model_.router_biases(); }
  std::vector<std::string> router_bias_names() const override;
  double flops_per_token(int64_t seq_len) const override;
  std::string flops_note() const override;
  int64_t activation_bytes(int64_t, int64_t) const override { return model_.activation_bytes(); }
  int64_t linear_input_bytes(int64_t, int64_t) const override { return model_.linear_input_bytes(); }
  // Active parameters per token counted in the FLOPs (see above).
  int64_t active_params() const;

 private:
  ModelConfig cfg_;
  TrainModelOptions opt_;
  TrainModel model_;
};

}  // namespace dsv3
