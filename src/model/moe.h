// DeepSeekMoE layer (spec §3): y = Σ_k g_k · Expert_{e_k}(x) + SharedExperts(x).
//
// MoeDispatcher is the seam for expert parallelism: it runs the routed experts for a batch of
// routed tokens and combines their outputs. LocalMoeDispatcher runs every expert in this
// process (tokens sorted by expert, one batched FFN per active expert); an expert-parallel
// dispatcher (all-to-all dispatch / combine over MPI) implements the same interface.
#pragma once

#include <cstdint>
#include <vector>

#include "model/gate.h"
#include "model/mlp.h"
#include "model/weights.h"

namespace dsv3 {

class MoeDispatcher {
 public:
  virtual ~MoeDispatcher() = default;
  // y (N, dim) += Σ_k routing.weights[t,k] · expert_{routing.experts[t,k]}(x_t). Deterministic:
  // each token's contributions are added in ascending expert order.
  virtual void routed_experts(float* y, const float* x, int64_t N, const Routing& routing,
                              const MoeWeights& w) = 0;
};

class LocalMoeDispatcher final : public MoeDispatcher {
 public:
  void routed_experts(float* y, const float* x, int64_t N, const Routing& routing, const MoeWeights& w) override;

  // Tokens routed to each expert by the last call (for load statistics).
  const std::vector<int64_t>& last_counts() const { return counts_; }

 private:
  std::vector<int64_t> counts_, offsets_, cursor_;
  std::vector<int32_t> order_;  // assignment indices (t·k + j) sorted by expert
  Scratch xe_, ye_;  // tokens gathered by expert, and the experts' outputs
  std::vector<FfnJob> jobs_;
  MlpScratch mlp_;
};

struct MoeScratch {
  Routing routing;
  Scratch shared_out;
  MlpScratch mlp;
};

// y (N, dim) = MoE(x). Overwrites y.
void moe_forward(float* y, const float* x, int64_t N, const MoeWeights& w, const RouterConfig& rc,
                 MoeDispatcher& dispatcher, MoeScratch& scratch);

}  // namespace dsv3
