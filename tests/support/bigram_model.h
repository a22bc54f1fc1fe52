// A small model with exact hand-written math for testing the training loop without the
// DeepSeek-V3 model: next-token softmax regression on the previous token's embedding,
//   h = embed[x_t] (dim),  logits = head·h + head_bias (vocab),  loss = mean CE(logits, x_{t+1}),
// plus a routing stand-in so the bias bookkeeping is exercised end to end: each token goes to
// the expert with the largest fixed pseudo-random affinity s_e(x) + router bias b_e (top-1),
// so the counts depend on the biases the trainer updates and checkpoints.
#pragma once

#include "train/trainable.h"

namespace dsv3::testing {

class BigramModel : public Trainable {
 public:
  BigramModel(int64_t vocab, int64_t dim, int64_t n_experts);
  // N(0, std²) for embed and head, zero head_bias.
  void init(uint64_t seed, float std);

  ParamSet& params() override { return params_; }
  LossParts forward_backward(const TrainBatch& batch) override;
  LossParts evaluate(const TrainBatch& batch) override;
  std::vector<std::vector<int64_t>> expert_counts() const override { return {counts_}; }
  std::vector<std::vector<float>>& router_biases() override { return biases_; }
  std::vector<std::string> router_bias_names() const override {
    return {"model.layers.0.mlp.gate.e_score_correction_bias"};
  }
  double flops_per_token(int64_t) const override { return 6.0 * double(2 * vocab_ * dim_); }
  std::string flops_note() const override { return "6 x (head matmul) per token"; }
  int64_t activation_bytes(int64_t batch, int64_t seq_len) const override {
    return batch * seq_len * vocab_ * 4;
  }

 private:
  LossParts run(const TrainBatch& batch, bool backward);
  int64_t vocab_, dim_, n_experts_;
  ParamSet params_;
  std::vector<std::vector<float>> biases_;
  std::vector<int64_t> counts_;
};

}  // namespace dsv3::testing
