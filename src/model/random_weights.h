// A model with random weights held in memory, in any storage dtype (F32, BF16, F16, or FP8 E4M3
// with 128x128 block scales quantized as the checkpoints are: scale = amax/448). Used by
// `dsv3 bench` (speed on fixed shapes without a checkpoint) and by tests.
#pragma once

#include <cstdint>
#include <optional>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"
#include "model/weights.h"

namespace dsv3 {

struct RandomWeightsOptions {
  DType dtype = DType::F32;  // storage of the projection matrices inside decoder layers
  uint64_t seed = 1;
  float std = 0.05f;         // matrices ~ N(0, std²)
  float norm_noise = 0.1f;   // norm weights ~ 1 + U(-noise, noise)
  float bias_range = 0.1f;   // router correction bias ~ U(-range, range)
  // Output head storage. Unset: like DeepSeek's FP8 checkpoints, BF16 unless dtype is F32.
  std::optional<DType> head_dtype = std::nullopt;
};

class RandomWeights {
 public:
  RandomWeights(const ModelConfig& cfg, const RandomWeightsOptions& opt);
  RandomWeights(const RandomWeights&) = delete;
  RandomWeights& operator=(const RandomWeights&) = delete;

  const ModelWeights& weights() const { return weights_; }
  // Storage bytes of all matrices (weights plus block scales).
  int64_t matrix_bytes() const { return matrix_bytes_; }

 private:
  WeightMatrix matrix(int64_t rows, int64_t cols, DType dtype);
  std::vector<float> vector(int64_t n, float center, float noise);

  RandomWeightsOptions opt_;
  uint64_t counter_ = 0;
  int64_t matrix_bytes_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> storage_;
  std::vector<std::unique_ptr<float[]>> scales_;
  ModelWeights weights_;
};

}  // namespace dsv3
