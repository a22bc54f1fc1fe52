// Sizes of a model derived from its config (parameter counts, active parameters per token,
// KV-cache bytes per token) and from a checkpoint (bytes on disk by dtype), for `dsv3 info`
// and for budgeting memory. Counts come from for_each_tensor, the one list of tensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "model/config.h"

namespace dsv3 {

// Parameters by part of the model.
struct ParamBreakdown {
  int64_t embedding = 0;       // embed_tokens
  int64_t head = 0;            // lm_head (0 when tied to the embedding)
  int64_t attention = 0;       // self_attn.* including q_a_layernorm / kv_a_layernorm
  int64_t norms = 0;           // input / post-attention / final norms (MTP: enorm, hnorm, shared_head.norm)
  int64_t dense_mlp = 0;       // MLPs of dense layers
  int64_t routed_experts = 0;  // mlp.experts.*
  int64_t shared_experts = 0;  // mlp.shared_experts.*
  int64_t router = 0;          // mlp.gate.weight + e_score_correction_bias
  int64_t mtp_proj = 0;        // eh_proj

  int64_t total() const;
  std::vector<std::pair<const char*, int64_t>> items() const;  // (name, count) in a fixed order
};

struct ModelStats {
  // Main model: embedding, layers 0..L-1, final norm, head.
  ParamBreakdown params;
  // Per token: every attention, norm, dense MLP and router parameter, the top-k routed experts
  // (K/E of the routed weights) plus the shared experts of each MoE layer, ONE embedding row
  // (a lookup), and the whole head. With the whole embedding matrix instead of one row this is
  // the "activated parameters" figure of the technical report's tables (37.55B for 671B).
  ParamBreakdown active;
  // MTP layers without the optional embed_tokens / shared_head.head copies (which are shared
  // with the main model); mtp_copies counts those copies.
  ParamBreakdown mtp;
  ParamBreakdown mtp_active;  // routed experts at K/E; embedding and head are the main model's
  int64_t mtp_copies = 0;

  // KV cache values per token over the main layers: the latent cache (kv_lora_rank +
  // qk_rope_head_dim per layer) and, for comparison, per-head K and V (n_heads·(qk_head_dim +
  // v_head_dim) per layer). MTP layers add n_mtp_layers more layers of the same.
  int64_t kv_latent_values = 0;
  int64_t kv_mha_values = 0;
  int64_t kv_latent_values_mtp = 0;
};

ModelStats compute_model_stats(const ModelConfig& cfg);

struct DiskStats {
  uint64_t file_bytes = 0;  // sum of file sizes (headers included)
  int64_t n_files = 0;
  int64_t n_tensors = 0;
  std::map<std::string, uint64_t> bytes_by_dtype;    // tensor payload bytes, by dtype name
  std::map<std::string, int64_t> tensors_by_dtype;
};

DiskStats compute_disk_stats(const Checkpoint& ck);

// The process's resident set in bytes (/proc/self/statm), or -1 where unavailable.
int64_t resident_memory_bytes();

}  // namespace dsv3
