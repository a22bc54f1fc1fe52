// Optimizers over a ParamSet (style rule 9: they walk its one list of tensors) and global
// gradient-norm clipping.
//
// AdamW (Loshchilov & Hutter, PyTorch's torch.optim.AdamW update, spec model §7.1: betas
// 0.9/0.95, weight decay 0.1 on matrices only, decoupled):
//   p ← p·(1 − lr·wd)                      (only where ParamTensor::weight_decay)
//   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²
//   p ← p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
// Moments are f32, or BF16 (round-to-nearest-even after each update) as the FP8 recipe stores
// them. SGD: p ← p·(1 − lr·wd) − lr·g, no state.
//
// Every element is updated independently (split across threads, no reductions), so results
// are identical for any thread count. The gradient norm is summed in double over fixed
// 64K-element blocks in a fixed order: identical bits for any thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "train/params.h"

namespace dsv3 {

enum class OptimizerKind { AdamW, Sgd };
enum class MomentDType { F32, BF16 };

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::AdamW;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  MomentDType moments = MomentDType::F32;
};

Result<OptimizerKind> parse_optimizer_kind(const std::string& name);
std::string optimizer_kind_name(OptimizerKind kind);

class Optimizer {
 public:
  Optimizer(ParamSet& params, const OptimizerOptions& options);

  // One update with learning rate `lr` from the gradients in params().grad. Increments step().
  void step(double lr);

  const OptimizerOptions& options() const { return opt_; }
  // Number of updates done (t of the bias correction).
  int64_t step_count() const { return t_; }
  void set_step_count(int64_t t) { t_ = t; }

  // State per tensor for checkpoints: first and second moments (empty for SGD). Each holds
  // numel elements of moment_dtype() (f32 as float, bf16 as uint16 bits).
  bool has_moments() const { return opt_.kind == OptimizerKind::AdamW; }
  MomentDType moment_dtype() const { return opt_.moments; }
  // Raw bytes of the moment of tensor i (which = 0: m, 1: v).
  uint8_t* moment_bytes(size_t tensor, int which);
  const uint8_t* moment_bytes(size_t tensor, int which) const;
  size_t moment_nbytes(size_t tensor) const;
  // Total bytes of optimizer state.
  int64_t state_bytes() const;

 private:
  ParamSet& params_;
  OptimizerOptions opt_;
  int64_t t_ = 0;
  size_t elem_ = 4;                  // bytes per moment element
  std::vector<uint8_t> m_, v_;       // one slab each, laid out like the parameter slab
};

// Global L2 norm of all gradients (double accumulation, fixed order).
double grad_norm(const ParamSet& params);
// Scales gradients by min(1, max_norm / (norm + 1e-6)) (PyTorch clip_grad_norm_); returns the
// factor applied. max_norm <= 0 disables clipping.
double clip_grad_norm(ParamSet& params, double norm, double max_norm);
// Multiplies every gradient by `factor` (e.g. 1/grad_accum).
void scale_grads(ParamSet& params, float factor);

}  // namespace dsv3
