// A DeepSeek-V3-architecture model for training: f32 master parameters (ParamSet), a forward
// that saves what backward needs, and a hand-written backward (no autograd), for the step
// objective of the report: L = L_main + λ·L_MTP + Σ_layers α·L_Bal (spec training §1-2).
// The router correction biases are state, not parameters: the trainer updates them after
// each step with the auxiliary-loss-free rule.
//
// Choices where the sources differ (training spec §1.3, §2):
//  * MTP module k reads (h^{k-1}_i, Emb(t_{i+k})) for i < T − k, runs its layer causally over
//    those T − k positions (RoPE positions 0..T−k−1) and predicts t_{i+k+1}. h^0 is the main
//    model's output after model.norm; h^k (k ≥ 1) is module k's output after shared_head.norm,
//    i.e. always the representation its head reads. Concatenation is [enorm(emb) ; hnorm(h)].
//  * L^k_MTP is the mean over its B·(T − k) valid targets (Megatron); the report's 1/T
//    normalizer (a factor (T − k)/T) is available as TrainModelOptions::mtp_report_normalizer.
//  * The balance loss counts f_i from the unbiased, ungrouped top-K of the affinities s (the
//    report's equation and Megatron), not from the biased group-limited selection.
//  * Gradients flow through the selected gate weights into s and the router; the selection
//    (bias, groups, top-K) is a constant and the bias gets no gradient.
// Activations are planned for (batch, seq_len) and allocated once at construction; a step may
// use fewer sequences or shorter ones. Threads split outputs; every reduction over tokens runs
// in a fixed order, so results are identical for any thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "model/weights.h"
#include "train/activations.h"
#include "train/linear.h"
#include "train/params.h"

namespace dsv3 {

struct TrainModelOptions {
  int64_t batch = 8;        // B: sequences per micro-batch
  int64_t seq_len = 256;    // T: tokens per sequence (inputs; targets are shifted by one)
  double mtp_weight = 0.3;  // λ
  double balance_alpha = 1e-4;  // α of the sequence-wise balance loss (0 disables it)
  bool recompute = false;   // recompute RMSNorm outputs and MLA up-projections in backward
  bool mtp_report_normalizer = false;  // L^k = Σ/(B·T) as in the report instead of Σ/(B·(T−k))
  // GEMM precision of the MLA and MLP/expert projections (train/linear.h); everything else
  // (embedding, heads, router gate, eh_proj, norms, attention core) stays f32.
  Precision precision = Precision::kF32;
  // Keep linear-layer inputs in f32 at bf16/fp8 instead of their low-precision caches
  // (train/activations.h): the same results with more memory (tests compare the two).
  bool f32_linear_inputs = false;
  // Keep the MoE SwiGLU inputs in f32 at bf16/fp8 instead of caching them like the linear inputs
  // (V3 §3.3.3). Unlike the linear-input caches this changes backward's numbers: the SwiGLU
  // output and its gradient are computed from the cached inputs.
  bool f32_swiglu_inputs = false;
};

// tokens (B, T + 1): the model reads tokens[:, 0:T] and predicts tokens[:, 1:T+1].
struct TrainBatch {
  const int32_t* tokens = nullptr;
  int64_t batch = 0;
  int64_t seq_len = 0;
};

struct LossParts {
  double total = 0;    // what backward differentiates
  double main = 0;     // mean next-token cross-entropy
  double mtp = 0;      // (1/D) Σ_k L^k_MTP (before λ)
  double balance = 0;  // Σ_layers L_Bal (after α)
};

class TrainModel {
 public:
  TrainModel(const ModelConfig& cfg, const TrainModelOptions& opt);
  ~TrainModel();

  const ModelConfig& config() const;
  ParamSet& params();
  const ParamSet& params() const;
  // N(0, std²) for every matrix and embedding, ones for norms (report: std 0.006).
  void init(uint64_t seed, float std = 0.006f);

  // Forward and backward of the step objective on one micro-batch; gradients ACCUMULATE into
  // params().grad (the caller zeroes them). Returns the loss parts.
  LossParts forward_backward(const TrainBatch& batch);
  // Forward only (validation): main-model loss and parts, no gradient.
  LossParts evaluate(const TrainBatch& batch);

  // Tokens routed to each expert by the last forward: one vector (n_routed_experts) per MoE
  // layer, main layers first then MTP layers.
  const std::vector<std::vector<int64_t>>& expert_counts() const;
  // The router correction bias of each MoE layer (same order), updated by the trainer. Used for
  // selection only when the config has one (topk_method noaux_tc).
  std::vector<std::vector<float>>& router_biases();

  // Views of the current parameters as inference weights (valid while this model lives): F32
  // matrices point into the parameters; norm vectors and router biases are copied now.
  ModelWeights weights_view() const;
  // Copies (dequantizing) every parameter from loaded weights, and the router correction
  // biases into router_biases(). Fails on a missing tensor or a shape mismatch.
  Status load_params_from(const ModelWeights& weights);

  // Exposed for tests: a digest of every routing decision of the last forward (the selected
  // experts and the balance loss's top-K of every MoE layer). Finite-difference checks use it to
  // tell a smooth change of the loss from a jump across a routing discontinuity.
  uint64_t routing_digest() const;

  // Bytes of the activation arena and its table (name, bytes) of saved tensors and scratch.
  int64_t activation_bytes() const;
  int64_t linear_input_bytes() const;  // of activation_bytes()
  const std::vector<ActivationEntry>& activation_table() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv3
