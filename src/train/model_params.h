// The parameters of the training model as a struct of pointers into a ParamSet, and the ONE place
// that lists them (style rule 9): for_each_param() enumerates every tensor with its Hugging Face
// name and shape, in the order of the reference modules (embed_tokens, layers, norm, lm_head, then
// the MTP layers n_layers + k). The same struct type holds the values and the gradients.
//
// MTP modules share the main embedding and output head: in training there are no copies (the
// checkpoint's stored copies model.layers.{n_layers+k}.{embed_tokens,shared_head.head} are not
// parameters). The router correction bias is state, not a parameter.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "model/weights.h"
#include "train/params.h"

namespace dsv3 {

// SwiGLU MLP: w2( silu(w1 x) * (w3 x) ).
struct MlpParams {
  float* w1 = nullptr;  // gate_proj (inter, dim)
  float* w2 = nullptr;  // down_proj (dim, inter)
  float* w3 = nullptr;  // up_proj (inter, dim)
  int64_t inter = 0;
};

struct AttnParams {
  float* wq = nullptr;       // q_proj (H·d_qk, dim), only when q_lora_rank == 0
  float* wq_a = nullptr;     // q_a_proj (q_lora_rank, dim)
  float* q_norm = nullptr;   // q_a_layernorm (q_lora_rank)
  float* wq_b = nullptr;     // q_b_proj (H·d_qk, q_lora_rank)
  float* wkv_a = nullptr;    // kv_a_proj_with_mqa (kv_lora_rank + d_r, dim)
  float* kv_norm = nullptr;  // kv_a_layernorm (kv_lora_rank)
  float* wkv_b = nullptr;    // kv_b_proj (H·(d_n + d_v), kv_lora_rank)
  float* wo = nullptr;       // o_proj (dim, H·d_v)
};

struct LayerParams {
  float* attn_norm = nullptr;  // input_layernorm (dim)
  float* ffn_norm = nullptr;   // post_attention_layernorm (dim)
  AttnParams attn;
  bool is_moe = false;
  MlpParams mlp;                    // dense layers
  float* gate = nullptr;            // mlp.gate.weight (n_routed_experts, dim)
  std::vector<MlpParams> experts;   // n_routed_experts
  MlpParams shared;                 // shared_experts (moe_inter_dim · n_shared_experts)
  bool has_shared = false;
  float* enorm = nullptr;      // MTP only (dim)
  float* hnorm = nullptr;      // MTP only (dim)
  float* eh_proj = nullptr;    // MTP only (dim, 2·dim), input [enorm(emb) ; hnorm(h)]
  float* head_norm = nullptr;  // MTP only: shared_head.norm (dim)
};

struct ModelParams {
  float* embed = nullptr;  // model.embed_tokens.weight (vocab, dim)
  float* norm = nullptr;   // model.norm.weight (dim)
  float* head = nullptr;   // lm_head.weight (vocab, dim); = embed when tie_word_embeddings
  std::vector<LayerParams> layers;      // n_layers
  std::vector<LayerParams> mtp_layers;  // n_mtp_layers
};

// Calls fn(name, shape, weight_decay, slot) for every parameter tensor, in checkpoint order.
// `p` is resized to the config's structure; `slot` is the pointer field of `p` for that tensor.
using ParamVisitor = std::function<void(const std::string& name, const std::vector<int64_t>& shape,
                                        bool weight_decay, float*& slot)>;
void for_each_param(const ModelConfig& cfg, ModelParams& p, const ParamVisitor& fn);

// Declares every parameter of `cfg` in `set` (not yet finalized), finalizes it, and points
// `values` at the master weights and `grads` at the gradients.
void build_params(const ModelConfig& cfg, ParamSet& set, ModelParams& values, ModelParams& grads);

// F32 inference views of the parameters. Matrices are views (valid while the ParamSet lives);
// norm vectors and the router biases (one per MoE layer, main layers then MTP) are copied.
ModelWeights params_weights_view(const ModelConfig& cfg, const ModelParams& p,
                                 const std::vector<std::vector<float>>& router_biases);

// Copies (dequantizing) every tensor of `src` into the parameters, and each MoE layer's
// e_score_correction_bias into `router_biases` (zeros when absent). Fails on a missing tensor
// or a shape mismatch.
Status copy_weights_into_params(const ModelConfig& cfg, const ModelWeights& src, ModelParams& p,
                                std::vector<std::vector<float>>& router_biases);

}  // namespace dsv3
