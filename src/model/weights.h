// The weights of a DeepSeek-V3-family model as views, under the official reference's names
// (model.py: wq_a, q_norm, wq_b, wkv_a, kv_norm, wkv_b, wo, w1/w2/w3 ...). Large matrices are
// non-owning views into their owner (a memory-mapped checkpoint or a training parameter
// buffer); the small vectors (norm weights, router bias) are converted to f32 and owned here.
// for_each_tensor() (loader.h) is the one place that lists HF names and shapes.
#pragma once

#include <vector>

#include "kernels/matmul.h"

namespace dsv3 {

using kernels::WeightMatrix;

struct AttentionWeights {
  WeightMatrix wq;    // q_proj (H·d_qk, dim), only when q_lora_rank == 0
  WeightMatrix wq_a;  // q_a_proj (q_lora_rank, dim)
  std::vector<float> q_norm;  // q_a_layernorm (q_lora_rank)
  WeightMatrix wq_b;  // q_b_proj (H·d_qk, q_lora_rank); per head: d_n nope rows, then d_r rope rows
  WeightMatrix wkv_a;  // kv_a_proj_with_mqa (kv_lora_rank + d_r, dim)
  std::vector<float> kv_norm;  // kv_a_layernorm (kv_lora_rank)
  WeightMatrix wkv_b;  // kv_b_proj (H·(d_n + d_v), kv_lora_rank); per head: d_n K rows, then d_v V rows
  WeightMatrix wo;     // o_proj (dim, H·d_v)
};

// SwiGLU MLP: w2( silu(w1 x) * (w3 x) ). Used by dense layers, routed and shared experts.
struct MlpWeights {
  WeightMatrix w1;  // gate_proj (inter, dim)
  WeightMatrix w2;  // down_proj (dim, inter)
  WeightMatrix w3;  // up_proj (inter, dim)
};

struct MoeWeights {
  WeightMatrix gate;          // mlp.gate.weight (n_routed_experts, dim): expert centroids
  std::vector<float> bias;    // e_score_correction_bias (n_routed_experts); empty when absent
  std::vector<MlpWeights> experts;  // n_routed_experts
  MlpWeights shared;          // shared_experts, width moe_inter_dim · n_shared_experts
  bool has_shared = false;
};

// The extra tensors of a multi-token-prediction module (stored as layer n_layers + k).
struct MtpWeights {
  std::vector<float> enorm;      // (dim)
  std::vector<float> hnorm;      // (dim)
  WeightMatrix eh_proj;          // (dim, 2·dim): input is [enorm(emb) ; hnorm(h)]
  std::vector<float> head_norm;  // shared_head.norm (dim)
  WeightMatrix embed;            // embed_tokens copy (vocab, dim); may be empty (shared)
  WeightMatrix head;             // shared_head.head copy (vocab, dim); may be empty (shared)
};

struct LayerWeights {
  std::vector<float> attn_norm;  // input_layernorm (dim)
  std::vector<float> ffn_norm;   // post_attention_layernorm (dim)
  AttentionWeights attn;
  bool is_moe = false;
  MlpWeights mlp;  // dense layers
  MoeWeights moe;  // MoE layers
  MtpWeights mtp;  // MTP layers only
};

struct ModelWeights {
  WeightMatrix embed;       // model.embed_tokens.weight (vocab, dim)
  std::vector<float> norm;  // model.norm.weight (dim)
  WeightMatrix head;        // lm_head.weight (vocab, dim); = embed when tie_word_embeddings
  std::vector<LayerWeights> layers;      // n_layers
  std::vector<LayerWeights> mtp_layers;  // n_mtp_layers (full decoder layers + MtpWeights)
};

}  // namespace dsv3
