// The seam between the training loop and a model: what the Trainer needs from anything it
// trains. TrainModel (the DeepSeek-V3 model) is adapted to it in train/train_model_adapter.h;
// tests train small models with exact hand-written math through the same interface, so the
// loop, the optimizer, checkpoints and resume are tested independently of the big model.
//
// Contract: params() is finalized and its pointers stay valid for the model's lifetime.
// forward_backward() ACCUMULATES gradients into params().grad (the caller zeroes them) and
// records the routing counts of that micro-batch (expert_counts(): one vector per MoE layer,
// the same order as router_biases()). evaluate() changes no state that affects training.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/params.h"
#include "train/train_model.h"

namespace dsv3 {

class Trainable {
 public:
  virtual ~Trainable() = default;

  virtual ParamSet& params() = 0;
  virtual LossParts forward_backward(const TrainBatch& batch) = 0;
  virtual LossParts evaluate(const TrainBatch& batch) = 0;

  // Routing counts of the last forward (empty when the model has no MoE layers).
  virtual std::vector<std::vector<int64_t>> expert_counts() const = 0;
  // Router correction biases (state, not parameters), updated by the trainer.
  virtual std::vector<std::vector<float>>& router_biases() = 0;
  // Checkpoint name of each router bias vector (HF: model.layers.L.mlp.gate.e_score_correction_bias).
  virtual std::vector<std::string> router_bias_names() const = 0;

  // Model FLOPs of forward + backward per trained token, and how they are counted (printed).
  virtual double flops_per_token(int64_t seq_len) const = 0;
  virtual std::string flops_note() const = 0;
  // Bytes of saved activations for one micro-batch of (batch, seq_len) (an estimate).
  virtual int64_t activation_bytes(int64_t batch, int64_t seq_len) const = 0;
  // Of them, the bytes of linear-layer inputs kept for backward (0 when the model does not say).
  virtual int64_t linear_input_bytes(int64_t /*batch*/, int64_t /*seq_len*/) const { return 0; }
};

}  // namespace dsv3
