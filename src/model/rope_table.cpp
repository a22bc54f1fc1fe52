#include "model/rope_table.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dsv3 {
namespace {

// YaRN: the dimension index whose wavelength makes `num_rotations` turns over the original
// context (HF yarn_find_correction_dim / official find_correction_dim).
double correction_dim(double num_rotations, double dim, double base, double max_pos) {
  return dim * std::log(max_pos / (num_rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
}

double yarn_mscale(double factor, double mscale) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

}  // namespace

std::vector<double> rope_inv_freq(const ModelConfig& cfg) {
  const int64_t dim = cfg.qk_rope_head_dim;
  const double base = cfg.rope_theta;
  std::vector<double> inv(size_t(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) inv[size_t(i)] = std::pow(base, -double(2 * i) / double(dim));
  if (!cfg.yarn.enabled) return inv;
  const auto& y = cfg.yarn;
  const double L0 = double(y.original_max_position_embeddings);
  double low = std::max(std::floor(correction_dim(y.beta_fast, double(dim), base, L0)), 0.0);
  double high = std::min(std::ceil(correction_dim(y.beta_slow, double(dim), base, L0)), double(dim - 1));
  if (low == high) high += 0.001;  // avoid a zero-width ramp
  for (int64_t i = 0; i < dim / 2; ++i) {
    double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    double theta = inv[size_t(i)];
    inv[size_t(i)] = theta / y.factor * ramp + theta * (1.0 - ramp);
  }
  return inv;
}

double attention_softmax_scale(const ModelConfig& cfg) {
  double scale = 1.0 / std::sqrt(double(cfg.qk_head_dim()));
  if (cfg.yarn.enabled && cfg.yarn.mscale_all_dim != 0.0) {
    double m = yarn_mscale(cfg.yarn.factor, cfg.yarn.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

void RopeTable::compute(const int64_t* positions, int64_t T) {
  const int64_t h = half();
  if (int64_t(cos_.size()) < T * h) {
    cos_.resize(size_t(T * h));
    sin_.resize(size_t(T * h));
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < h; ++i) {
      double phi = double(positions[t]) * inv_freq_[size_t(i)];
      cos_[size_t(t * h + i)] = float(std::cos(phi));
      sin_[size_t(t * h + i)] = float(std::sin(phi));
    }
  }
}

}  // namespace dsv3
