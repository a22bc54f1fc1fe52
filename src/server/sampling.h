// Token sampling for the server's requests: OpenAI-style presence/frequency penalties over the
// tokens generated so far, then temperature (0 = greedy argmax), then nucleus (top_p) sampling.
//
// Reproducible per request: the uniform draw for generated token i is Rng(seed).uniform(i), so a
// request's tokens depend only on its own logits and seed, never on what else is in the batch.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace dsv3::server {

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  float top_p = 1.0f;        // (0, 1]
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
};

class TokenSampler {
 public:
  explicit TokenSampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}

  // Picks generated token number `step` from logits (vocab), which it may modify in place.
  int32_t sample(std::span<float> logits, uint64_t step);
  // Records a generated token (for the penalties).
  void observe(int32_t token) { ++counts_[token]; }

 private:
  SamplingParams p_;
  Rng rng_;
  std::unordered_map<int32_t, int32_t> counts_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace dsv3::server
