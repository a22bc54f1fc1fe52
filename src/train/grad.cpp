#include "train/grad.h"

#include "train/train_model.h"

namespace dsv3 {

Result<MainGradients> main_model_gradients(const ModelConfig& cfg, const ModelWeights& weights,
                                           std::span<const int32_t> tokens) {
  const int64_t n = int64_t(tokens.size());
  if (n < 2) return Status::errorf("need at least 2 tokens (inputs and a target), got {}", n);
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[size_t(i)] < 0 || tokens[size_t(i)] >= cfg.vocab_size) {
      return Status::errorf("token {} at index {} is outside the vocabulary [0, {})", tokens[size_t(i)], i,
                            cfg.vocab_size);
    }
  }
  if (n - 1 > cfg.max_position_embeddings) {
    return Status::errorf("{} positions exceed max_position_embeddings {}", n - 1, cfg.max_position_embeddings);
  }
  // The main model alone: a config without MTP layers, and the weights without them.
  ModelConfig main_cfg = cfg;
  main_cfg.n_mtp_layers = 0;
  ModelWeights main_weights = weights;
  main_weights.mtp_layers.clear();
  TrainModel model(main_cfg, {.batch = 1, .seq_len = n - 1, .mtp_weight = 0.0, .balance_alpha = 0.0});
  DSV3_TRY(model.load_params_from(main_weights));
  model.params().zero_grad();
  MainGradients out;
  out.loss = model.forward_backward({tokens.data(), 1, n - 1}).main;
  for (const ParamTensor& t : model.params().tensors())
    out.tensors.push_back({t.name, t.shape, std::vector<float>(t.grad, t.grad + t.numel)});
  return out;
}

}  // namespace dsv3
