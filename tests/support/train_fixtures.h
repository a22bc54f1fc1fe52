// Fixtures for training tests: token batches and randomized TrainModel parameters.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "train/train_model.h"

namespace dsv3::testing {

// (B, T + 1) token ids in [0, vocab), deterministic in `seed`.
inline std::vector<int32_t> make_tokens(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  Rng rng(seed, 99);
  std::vector<int32_t> t(size_t(B * (T + 1)));
  for (auto& v : t) v = int32_t(rng.next_bits() % uint64_t(vocab));
  return t;
}

// Matrices N(0, 0.1²) (large enough that gradients stand above f32 noise), norm weights
// 1 + U(-0.2, 0.2), router biases U(-0.05, 0.05) so the bias changes some selections.
inline void randomize_model(TrainModel& model, uint64_t seed) {
  model.init(seed, 0.1f);
  Rng rng(seed, 7);
  for (auto& t : model.params().tensors()) {
    if (t.shape.size() != 1) continue;
    for (int64_t i = 0; i < t.numel; ++i) t.data[i] = 1.0f + 0.4f * (rng.next_uniform() - 0.5f);
  }
  for (auto& b : model.router_biases())
    for (auto& v : b) v = 0.1f * (rng.next_uniform() - 0.5f);
}

}  // namespace dsv3::testing
