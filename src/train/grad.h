// The gradient of a model's mean next-token cross-entropy on one token sequence w.r.t. every
// main-model weight (no MTP loss, no balance loss, MTP layers excluded): what `dsv3 grad` writes
// and what the golden gradients of the independent reference are compared against. Weights in
// any stored dtype are dequantized to f32 first; the gradient is w.r.t. those f32 values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "model/weights.h"

namespace dsv3 {

struct NamedGradient {
  std::string name;            // HF name
  std::vector<int64_t> shape;  // HF shape
  std::vector<float> grad;
};

struct MainGradients {
  double loss = 0;  // mean over the len(tokens) − 1 predictions
  std::vector<NamedGradient> tensors;  // checkpoint order
};

// tokens: t_1..t_n (n >= 2), each in [0, vocab).
Result<MainGradients> main_model_gradients(const ModelConfig& cfg, const ModelWeights& weights,
                                           std::span<const int32_t> tokens);

}  // namespace dsv3
