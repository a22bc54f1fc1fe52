// Multi-head Latent Attention (spec §2.3; official model.py MLA). Two paths that agree up to
// rounding:
//   Absorbed (default; what decode uses): kv_b_proj is folded into the query (q_abs = q_nope·W_UK)
//     and into the output (o = o_lat·W_UVᵀ), so attention runs directly over the latent cache.
//   Naive (the slow twin; HF's path): per-head K and V are materialized from the cached latents.
// Both read and write the same latent cache: [c_kv = kv_norm(kv[:r]) ; RoPE(k_pe)] per token.
#pragma once

#include <cstdint>
#include <span>

#include "model/config.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace dsv3 {

enum class AttentionPath { Absorbed, Naive };

// A run of new tokens of one sequence; the first is at position cache->length().
struct SeqChunk {
  SequenceCache* cache;
  const int32_t* tokens;
  int64_t n_tokens;
};

class Mla {
 public:
  explicit Mla(const ModelConfig& cfg);

  // out (N, dim) = MLA(x), x (N, dim) already normed (input_layernorm). The rows of batch chunk c
  // follow those of chunk c-1. cos/sin (N, d_r/2) hold each row's absolute position. Writes
  // every row's latent into its sequence's cache at layer `cache_layer` (the caller has reserved
  // room and advances the lengths after the last layer).
  void forward(float* out, const float* x, const AttentionWeights& w, std::span<const SeqChunk> batch,
               int64_t cache_layer, const float* cos, const float* sin, AttentionPath path);

 private:
  void attend_absorbed(float* o, const float* q, const AttentionWeights& w, const kernels::LatentCacheView& cache,
                       int64_t S, int64_t start);
  // A decode step of several sequences, one token each (q and o: one row per chunk).
  void attend_absorbed_decode(float* o, const float* q, const AttentionWeights& w, std::span<const SeqChunk> batch,
                              int64_t cache_layer);
  // q_lat[s, h, :] = [q_nope[s, h, :] · W_UK[h] ; q_pe[s, h, :]] for S rows, and
  // o[s, h, :] = o_lat[s, h, :] · W_UV[h]ᵀ: the absorbed path's per-head products.
  void absorb(float* q_lat, const float* q, const AttentionWeights& w, int64_t h, int64_t S) const;
  void project(float* o, const float* o_lat, const AttentionWeights& w, int64_t h, int64_t S) const;
  void attend_naive(float* o, const float* q, const AttentionWeights& w, const kernels::LatentCacheView& cache,
                    int64_t S, int64_t start);

  int64_t dim_, H_, dn_, dr_, dv_, r_, dqk_;
  float eps_, scale_;
  Scratch cq_, q_, kv_, o_, q_lat_, o_lat_, c_all_, kvb_, k_;
};

}  // namespace dsv3
