// Forward (saving activations) and hand-written backward of one decoder layer of the training
// model, and of its parts: MLA (spec §2.3, naive per-head attention over full causal sequences),
// the dense SwiGLU MLP, and the MoE layer (router, routed experts, shared experts, balance loss;
// spec §3 and training spec §1.3). Each backward reads as its forward reversed.
//
// Conventions: B sequences of T tokens, rows sequence-major (N = B·T). Parameter gradients
// (a ModelParams-shaped struct of grad pointers) and input gradients ACCUMULATE. cos/sin are
// (N, d_r/2) tables of each row's position. Scratch comes from Activations::scratch.
#pragma once

#include <cstdint>
#include <span>

#include "model/config.h"
#include "model/gate.h"
#include "train/activations.h"
#include "train/linear.h"
#include "train/model_params.h"

namespace dsv3 {

// Everything a layer needs besides its parameters and activations.
struct LayerContext {
  const ModelConfig* cfg = nullptr;
  RouterConfig router;
  int64_t B = 0, T = 0;  // this layer's sequences and tokens per sequence
  const float* cos = nullptr;
  const float* sin = nullptr;
  float softmax_scale = 1.0f;
  bool recompute = false;
  double balance_alpha = 0.0;  // α; 0 disables the balance loss
  Precision precision = Precision::kF32;  // of the MLA and MLP/expert projections (train/linear.h)
  StepScratch* scratch = nullptr;
};

// out (N, dim) = MLA(xn). Saves into `a` (xn itself is the caller's, a.xn).
void mla_train_forward(float* out, MlaActs& a, const AttnParams& p, const LayerContext& ctx);
// Recomputes the [R] tensors of `a` (cqn, ckv, kvb, k) from the saved cq, kv and rstd.
void mla_recompute(MlaActs& a, const AttnParams& p, const LayerContext& ctx);
// dxn (N, dim) += MLA backward of dout (N, dim); parameter gradients into g.
void mla_train_backward(float* dxn, const AttnParams& g, const float* dout, const MlaActs& a, const AttnParams& p,
                        const LayerContext& ctx);

// y (N, dim) = w2(silu(x·w1ᵀ) ⊙ x·w3ᵀ); saves gate (N, inter), up (N, inter) and x into x_in
// (train/linear.h). act is scratch: w2's input is recomputed in backward, not cached (V3 §3.3.3).
void mlp_train_forward(float* y, float* gate, float* up, float* act, const float* x, const LinearInput& x_in,
                       const MlpParams& p, int64_t N, int64_t dim, Precision precision);
// dx (N, dim) += backward of dy through the MLP; parameter gradients into g. Uses the
// scratch dg, du, da (N·inter each).
void mlp_train_backward(float* dx, const MlpParams& g, const float* dy, const LinearInput& x_in, const float* gate,
                        const float* up, const MlpParams& p, int64_t N, int64_t dim, StepScratch& s,
                        Precision precision);
// The same with x kept by the caller in f32.
void mlp_train_forward(float* y, float* gate, float* up, float* act, const float* x, const MlpParams& p, int64_t N,
                       int64_t dim, Precision precision = Precision::kF32);
void mlp_train_backward(float* dx, const MlpParams& g, const float* dy, const float* x, const float* gate,
                        const float* up, const MlpParams& p, int64_t N, int64_t dim, StepScratch& s,
                        Precision precision = Precision::kF32);

// The gate-weight backward of one token (spec §3 step 6): w_j = rs·s_{e_j}/Σ_sel s (or rs·s_{e_j}
// without normalization); ds (n_experts) += ∂/∂s of Σ_j dw_j·w_j. The selection is a constant.
void gate_weights_backward(float* ds, const float* dw, const float* s, const int32_t* experts,
                           const RouterConfig& rc);

// Complementary sequence-wise balance loss of one sequence (training spec §1.3), before α:
//   f_i = E/(K·T)·#{t : i ∈ TopK_t(s)}, P_i = (1/T)·Σ_t s_{i,t}/Σ_j s_{j,t}, returns Σ_i f_i·P_i.
// TopK is the unbiased, ungrouped top-K of s (ties to the lower index), as in the report's
// equation and Megatron; f (E) is written (a constant for backward). s (T, E); work (E) is scratch.
double balance_loss_forward(float* f, const float* s, int64_t T, int64_t E, int64_t K, float* work);
// ds (T, E) += dloss·∂(Σ_i f_i·P_i)/∂s  (gradient only through P).
void balance_loss_backward(float* ds, float dloss, const float* f, const float* s, int64_t T, int64_t E);

// MoE forward: y (N, dim) = Σ_k w_k·Expert_{e_k}(xn) + Shared(xn) for xn = a.xn. Routes with
// `bias` (selection only), counts the assignments per expert into counts (E), and returns the
// balance loss α·mean_b Σ_i f_i P_i of the layer (0 when α = 0).
double moe_train_forward(float* y, FfnActs& a, const LayerParams& p, std::span<const float> bias, int64_t* counts,
                         const LayerContext& ctx);
// dxn (N, dim) += MoE backward of dy (N, dim), including the balance loss (scaled by α/B).
void moe_train_backward(float* dxn, const LayerParams& g, const float* dy, const FfnActs& a, const LayerParams& p,
                        const LayerContext& ctx);

// A whole decoder layer: x_out = x_mid + FFN(ffn_norm(x_mid)), x_mid = x_in + MLA(attn_norm(x_in)).
// Returns the layer's balance loss (MoE layers with α > 0).
double layer_train_forward(float* x_out, LayerActs& a, const LayerParams& p, std::span<const float> bias,
                           int64_t* counts, const LayerContext& ctx);
// dres (N, dim): on entry the gradient of x_out, on exit the gradient of x_in.
void layer_train_backward(float* dres, const LayerParams& g, LayerActs& a, const LayerParams& p,
                          const LayerContext& ctx);

}  // namespace dsv3
