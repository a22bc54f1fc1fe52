// What the training forward saves for backward, and the gradient scratch of backward, planned
// from one table (style rule 3): plan_activations() walks every tensor with its size for a
// (batch, seq_len, config), once to size one slab and once to carve it. Nothing is allocated
// inside a step. Shapes are in rows of N = B·T tokens (sequence-major) unless stated.
//
// With recompute, the tensors marked [R] (RMSNorm outputs and MLA up-projections) are not kept
// per layer: every layer shares one buffer for each, and backward recomputes them.
//
// Linear inputs [L] (train/linear.h, LinearInput): each has an f32 pointer, which forward writes
// and the linear layer reads, and a LinearInput `*_in`, what backward reads. At fp32 (or with
// f32_linear_inputs) the LinearInput views the per-layer f32 tensor, as before low-precision
// caches existed. At bf16/fp8 it holds the tensor in cache_format() (BF16; E4M3 1x128 tiles + f32
// scales; E5M6 for the attention output) per layer, and the f32 pointer is one buffer shared by
// all layers, since only forward reads it. [R] tensors under recompute keep an f32 LinearInput on
// their shared buffer (backward recomputes them, then quantizes as forward did). The MoE layers'
// ffn.xn stays f32 per layer: the router is kept in f32 (training spec §3.4) and its Wgrad needs
// xn in f32; the routed and shared experts read the same rows.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "train/linear.h"

namespace dsv3 {

struct MlaActs {
  float* xn = nullptr;       // (N, dim) input_layernorm output [R] [L]: q_a_proj (or q_proj), kv_a_proj
  float* rstd = nullptr;     // (N) of input_layernorm
  float* cq = nullptr;       // (N, q_lora_rank) q_a_proj output, before q_a_layernorm
  float* cqn = nullptr;      // (N, q_lora_rank) q_a_layernorm output [R] [L]: q_b_proj
  float* rstd_q = nullptr;   // (N)
  float* q = nullptr;        // (N, H, d_qk) queries, rope slice rotated
  float* kv = nullptr;       // (N, kv_lora_rank + d_r) kv_a_proj_with_mqa output, unrotated
  float* ckv = nullptr;      // (N, kv_lora_rank) kv_a_layernorm output [R] [L]: kv_b_proj
  float* rstd_kv = nullptr;  // (N)
  float* kvb = nullptr;      // (N, H, d_n + d_v) kv_b_proj output: k_nope and v per head [R]
  float* k = nullptr;        // (N, H, d_qk) keys [k_nope ; RoPE(k_pe)] [R]
  float* lse = nullptr;      // (B, H, T) log-sum-exp of each attention row
  float* o = nullptr;        // (N, H, d_v) attention output before o_proj [L]: o_proj
  LinearInput xn_in, cqn_in, ckv_in, o_in;  // the [L] tensors as backward reads them
};

struct FfnActs {
  float* xn = nullptr;    // (N, dim) post_attention_layernorm output [R] [L]: MLP, or router + experts
  float* rstd = nullptr;  // (N)
  LinearInput xn_in;      // xn as backward reads it (f32 in MoE layers)
  float* g = nullptr;     // (N, inter) dense: gate_proj output; MoE: shared experts' gate_proj
  float* u = nullptr;     // (N, inter) dense: up_proj output; MoE: shared experts' up_proj
  // MoE only.
  float* s = nullptr;          // (N, E) router affinities
  int32_t* experts = nullptr;  // (N, K) selected experts
  float* weights = nullptr;    // (N, K) gate weights
  int32_t* order = nullptr;    // (N·K) assignments t·K + j sorted by expert (stable)
  int32_t* row_of = nullptr;   // (N·K) sorted row of assignment t·K + j
  int64_t* offsets = nullptr;  // (E + 1) first sorted row of each expert
  float* eg = nullptr;         // (N·K, moe_inter) expert gate_proj outputs, sorted rows
  float* eu = nullptr;         // (N·K, moe_inter) expert up_proj outputs, sorted rows
  // The SwiGLU inputs of a MoE layer as backward reads them (V3 §3.3.3: cached in FP8, the
  // SwiGLU output recomputed from them): eg, eu, and the shared experts' g, u. In bf16/fp8 with
  // low-precision caches they are BF16 / E4M3 1x128 codes, and eg, eu, g, u point at shared f32
  // buffers that the forward fills and backward decodes into; otherwise they view the f32 tensors.
  LinearInput eg_in, eu_in, g_in, u_in;
  float* ey = nullptr;         // (N·K, dim) expert outputs before the gate weight, sorted rows
  float* f = nullptr;          // (B, E) balance-loss load fractions f_i of each sequence
};

struct LayerActs {
  int64_t rows = 0;         // planned N of this layer (B·T main, B·(T−k) MTP module k)
  float* x_in = nullptr;    // (N, dim) residual stream entering the layer
  float* x_mid = nullptr;   // (N, dim) after the attention residual
  MlaActs attn;
  FfnActs ffn;
};

struct MtpActs {
  int32_t* tokens = nullptr;   // (N_k) input tokens t_{i+k}
  int32_t* targets = nullptr;  // (N_k) targets t_{i+k+1}
  float* emb = nullptr;        // (N_k, dim) Emb(t_{i+k})
  float* rstd_e = nullptr;     // (N_k)
  float* hprev = nullptr;      // (N_k, dim) h^{k-1}_i
  float* rstd_h = nullptr;     // (N_k)
  float* cat = nullptr;        // (N_k, 2·dim) [enorm(emb) ; hnorm(hprev)]
  LayerActs layer;             // x_in = eh_proj · cat
  float* x_out = nullptr;      // (N_k, dim)
  float* h = nullptr;          // (N_k, dim) shared_head.norm output h^k
  float* rstd_o = nullptr;     // (N_k)
  float* logits = nullptr;     // (N_k, vocab)
  float* losses = nullptr;     // (N_k)
  float* lse = nullptr;        // (N_k) log-sum-exp of each row of logits
  float* dh = nullptr;         // (N_k, dim) gradient of h^k (from the head and module k+1)
};

// Scratch of one step, shared by all layers (forward temporaries and backward gradients).
struct StepScratch {
  float* y = nullptr;       // (N, dim) a sublayer's output before the residual add
  float* act = nullptr;     // (N·max(inter, K·moe_inter, shared inter)) SwiGLU product
  float* xe = nullptr;      // (N, dim) tokens gathered for one expert
  float* route = nullptr;   // (N, E) router work (selection scores)
  int32_t* sel = nullptr;   // (N, K) unbiased top-K of the balance loss
  float* dres = nullptr;    // (N, dim) gradient of the residual stream
  float* dxn = nullptr;     // (N, dim) gradient of a norm output
  float* dq = nullptr;      // (N, H, d_qk)
  float* dk = nullptr;      // (N, H, d_qk)
  float* dkvb = nullptr;    // (N, H, d_n + d_v)
  float* dkv = nullptr;     // (N, kv_lora_rank + d_r)
  float* dckv = nullptr;    // (N, kv_lora_rank)
  float* dcq = nullptr;     // (N, q_lora_rank)
  float* dcqn = nullptr;    // (N, q_lora_rank)
  float* dout = nullptr;    // (N, H, d_v) gradient of the attention output
  float* dg = nullptr;      // (N·max(inter, shared inter)) also one expert's rows
  float* du = nullptr;      // same
  float* da = nullptr;      // same
  float* dye = nullptr;     // (N, dim) one expert's weighted output gradient
  float* dw = nullptr;      // (N, K) gradient of the gate weights
  float* ds = nullptr;      // (N, E) gradient of the affinities
  float* dlogit_r = nullptr;  // (N, E) gradient of the router logits
  float* dlogits = nullptr;   // (N, vocab)
  float* dcat = nullptr;      // (N, 2·dim)
  float* demb = nullptr;      // (N, dim)
  float* dhprev = nullptr;    // (N, dim)
};

struct Activations {
  int64_t batch = 0, seq_len = 0;
  int32_t* tokens = nullptr;   // (N) inputs t_1..t_T of each sequence
  int32_t* targets = nullptr;  // (N) t_2..t_{T+1}
  std::vector<LayerActs> layers;
  float* x_final = nullptr;  // (N, dim) residual stream after the last layer
  float* h = nullptr;        // (N, dim) model.norm output h^0
  float* rstd_f = nullptr;   // (N)
  float* logits = nullptr;   // (N, vocab)
  float* losses = nullptr;   // (N)
  float* lse = nullptr;      // (N) log-sum-exp of each row of logits
  float* dh = nullptr;       // (N, dim) gradient of h^0
  std::vector<MtpActs> mtp;  // one per module with T − k >= 1
  StepScratch scratch;
};

struct ActivationEntry {
  std::string name;
  int64_t bytes;
  bool linear_input = false;  // a linear layer's input kept for backward (codes, scales or f32)
};

// The arena behind an Activations: the table of entries and one 64-byte-aligned slab.
class ActivationArena {
 public:
  // precision chooses the linear-input caches (cache_format()); f32_linear_inputs keeps them in
  // f32 in every mode (backward then derives the same low-precision operands from f32).
  // f32_swiglu_inputs keeps the MoE SwiGLU inputs in f32 (FfnActs::eg_in).
  ActivationArena(const ModelConfig& cfg, int64_t batch, int64_t seq_len, int64_t mtp_depth, bool recompute,
                  Precision precision = Precision::kF32, bool f32_linear_inputs = false,
                  bool f32_swiglu_inputs = false);
  Activations& acts() { return acts_; }
  const Activations& acts() const { return acts_; }
  const std::vector<ActivationEntry>& table() const { return table_; }
  int64_t bytes() const { return bytes_; }
  // Bytes of the entries marked linear_input (alignment padding excluded).
  int64_t linear_input_bytes() const;

 private:
  Activations acts_;
  std::vector<ActivationEntry> table_;
  int64_t bytes_ = 0;
  std::unique_ptr<std::byte[]> slab_;
};

}  // namespace dsv3
