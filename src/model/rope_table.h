// RoPE frequencies with the YaRN correction, and the softmax scale of MLA (spec §2.4-2.5).
// Semantics: YaRN applies whenever config.json has rope_scaling of type yarn (HF; the official
// demo only applies it when its runtime max_seq_len > 4096 — spec §9 D2). The softmax scale is
// d_qk^-0.5 · m² with m = 0.1·mscale_all_dim·ln(factor) + 1 (spec D3). cos/sin are not rescaled
// (the official code never does; for every released config HF's ratio is exactly 1).
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dsv3 {

// inv_freq[i], i < d_r / 2, computed in double.
std::vector<double> rope_inv_freq(const ModelConfig& cfg);

// σ for the attention scores.
double attention_softmax_scale(const ModelConfig& cfg);

// cos/sin tables (T, d_r/2) for a list of absolute positions; reused across calls.
class RopeTable {
 public:
  explicit RopeTable(const ModelConfig& cfg) : inv_freq_(rope_inv_freq(cfg)) {}
  int64_t half() const { return int64_t(inv_freq_.size()); }
  // Fills cos/sin for positions[0..T). Grows its buffers only when T exceeds what it had.
  void compute(const int64_t* positions, int64_t T);
  const float* cos() const { return cos_.data(); }
  const float* sin() const { return sin_.data(); }

 private:
  std::vector<double> inv_freq_;
  std::vector<float> cos_, sin_;
};

}  // namespace dsv3
