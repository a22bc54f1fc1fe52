#include "train/balance.h"

#include <algorithm>
#include <numeric>

#include "core/check.h"

namespace dsv3 {

void update_router_bias(std::span<float> bias, std::span<const int64_t> counts, float gamma) {
  DSV3_CHECK(bias.size() == counts.size(), "bias has {} entries, counts {}", bias.size(), counts.size());
  if (gamma == 0.0f || counts.empty()) return;
  const int64_t n = int64_t(counts.size());
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t(0));
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t e = total - n * counts[i];  // n·(c̄ − c_i): same sign, exact
    bias[i] += e > 0 ? gamma : e < 0 ? -gamma : 0.0f;
  }
}

LayerLoadStats layer_load_stats(std::span<const int64_t> counts, std::span<const float> bias) {
  LayerLoadStats s;
  if (!bias.empty()) {
    auto [lo, hi] = std::minmax_element(bias.begin(), bias.end());
    s.bias_min = *lo;
    s.bias_max = *hi;
  }
  if (counts.empty()) return s;
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t(0));
  auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  s.zero_experts = std::count(counts.begin(), counts.end(), int64_t(0));
  if (total == 0) return s;
  const double mean = double(total) / double(counts.size());
  s.max_vio = (double(*hi) - mean) / mean;
  s.min_rel = double(*lo) / mean;
  s.max_rel = double(*hi) / mean;
  return s;
}

LoadSummary summarize_load(const std::vector<std::vector<int64_t>>& counts,
                           const std::vector<std::vector<float>>& biases) {
  LoadSummary sum;
  if (counts.empty()) return sum;
  DSV3_CHECK(biases.empty() || biases.size() == counts.size(), "{} bias vectors for {} layers",
             biases.size(), counts.size());
  int64_t active = 0;  // layers that routed tokens this step (an MTP block with λ = 0 routes none)
  for (size_t l = 0; l < counts.size(); ++l) {
    std::span<const float> b = biases.empty() ? std::span<const float>() : std::span<const float>(biases[l]);
    LayerLoadStats s = layer_load_stats(counts[l], b);
    sum.layers.push_back(s);
    int64_t routed = 0;
    for (int64_t c : counts[l]) routed += c;
    if (routed == 0) continue;
    if (active++ == 0) {
      sum.min_rel = s.min_rel;
      sum.max_rel = s.max_rel;
      sum.bias_min = s.bias_min;
      sum.bias_max = s.bias_max;
    }
    sum.max_vio_mean += s.max_vio;
    sum.max_vio_max = std::max(sum.max_vio_max, s.max_vio);
    sum.min_rel = std::min(sum.min_rel, s.min_rel);
    sum.max_rel = std::max(sum.max_rel, s.max_rel);
    sum.zero_experts += s.zero_experts;
    sum.bias_min = std::min(sum.bias_min, s.bias_min);
    sum.bias_max = std::max(sum.bias_max, s.bias_max);
  }
  if (active > 0) sum.max_vio_mean /= double(active);
  return sum;
}

void accumulate_counts(std::vector<std::vector<int64_t>>& acc, const std::vector<std::vector<int64_t>>& more) {
  if (acc.empty()) {
    acc = more;
    return;
  }
  DSV3_CHECK(acc.size() == more.size(), "count layers {} vs {}", acc.size(), more.size());
  for (size_t l = 0; l < acc.size(); ++l) {
    DSV3_CHECK(acc[l].size() == more[l].size(), "layer {}: {} vs {} experts", l, acc[l].size(), more[l].size());
    for (size_t i = 0; i < acc[l].size(); ++i) acc[l][i] += more[l][i];
  }
}

}  // namespace dsv3
