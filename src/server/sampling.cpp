#include "server/sampling.h"

#include <algorithm>
#include <cmath>

namespace dsv3::server {

int32_t TokenSampler::sample(std::span<float> logits, uint64_t step) {
  // OpenAI's definition: logit -= count·frequency_penalty + (count > 0)·presence_penalty.
  for (const auto& [token, count] : counts_) {
    if (token < 0 || size_t(token) >= logits.size()) continue;
    logits[token] -= float(count) * p_.frequency_penalty + (count > 0 ? p_.presence_penalty : 0.0f);
  }
  const int64_t V = int64_t(logits.size());
  if (p_.temperature <= 0.0f) {
    // Lowest id among equal maxima, so ties resolve the same way on every run.
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  // Softmax in double over logits/T, computed stably from the maximum.
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  candidates_.resize(size_t(V));
  double total = 0;
  for (int64_t i = 0; i < V; ++i) {
    const float pr = float(std::exp(double(logits[i] - max_logit) / p_.temperature));
    candidates_[size_t(i)] = {pr, int32_t(i)};
    total += pr;
  }
  // Nucleus: the smallest set of most probable tokens whose mass reaches top_p (ties by id).
  size_t keep = candidates_.size();
  double kept_mass = total;
  if (p_.top_p < 1.0f) {
    std::sort(candidates_.begin(), candidates_.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    double mass = 0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      mass += candidates_[i].first;
      if (mass >= double(p_.top_p) * total) {
        keep = i + 1;
        break;
      }
    }
    kept_mass = 0;
    for (size_t i = 0; i < keep; ++i) kept_mass += candidates_[i].first;
  }
  const double u = double(rng_.uniform(step)) * kept_mass;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += candidates_[i].first;
    if (u < acc) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace dsv3::server
