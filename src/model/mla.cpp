#include "model/mla.h"

#include <algorithm>
#include <cstring>

#include "core/parallel_for.h"
#include "kernels/attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "model/rope_table.h"

namespace dsv3 {

using kernels::HeadsView;
using kernels::matmul;

Mla::Mla(const ModelConfig& cfg)
    : dim_(cfg.dim),
      H_(cfg.n_heads),
      dn_(cfg.qk_nope_head_dim),
      dr_(cfg.qk_rope_head_dim),
      dv_(cfg.v_head_dim),
      r_(cfg.kv_lora_rank),
      dqk_(cfg.qk_head_dim()),
      eps_(float(cfg.rms_norm_eps)),
      scale_(float(attention_softmax_scale(cfg))) {}

void Mla::forward(float* out, const float* x, const AttentionWeights& w, std::span<const SeqChunk> batch,
                  int64_t cache_layer, const float* cos, const float* sin, AttentionPath path) {
  int64_t N = 0;
  for (const auto& c : batch) N += c.n_tokens;
  const int64_t row = r_ + dr_;

  // Queries (N, H, d_qk): low-rank path c_q = q_norm(x·W_qaᵀ), q = c_q·W_qbᵀ, or direct q = x·W_qᵀ.
  float* q = q_.get(N * H_ * dqk_);
  if (!w.wq_a.empty()) {
    float* cq = cq_.get(N * w.wq_a.rows);
    matmul(cq, x, w.wq_a, N);
    kernels::rmsnorm_forward(cq, nullptr, cq, w.q_norm.data(), N, w.wq_a.rows, eps_);
    matmul(q, cq, w.wq_b, N);
  } else {
    matmul(q, x, w.wq, N);
  }
  // Compressed KV (N, r + d_r): c_kv normed, the shared rotary key k_pe is not.
  float* kv = kv_.get(N * row);
  matmul(kv, x, w.wkv_a, N);
  kernels::rmsnorm_forward(kv, row, nullptr, kv, row, w.kv_norm.data(), N, r_, eps_);
  kernels::rope_forward(q + dn_, N, H_, H_ * dqk_, dqk_, dr_, cos, sin);
  kernels::rope_forward(kv + r_, N, 1, row, row, dr_, cos, sin);

  float* o = o_.get(N * H_ * dv_);
  int64_t row0 = 0;
  for (const auto& c : batch) {
    const int64_t start = c.cache->length();
    const kernels::LatentCacheView view = c.cache->layer(cache_layer);
    for (int64_t s = 0; s < c.n_tokens; ++s) {
      std::memcpy(view.row(start + s), kv + (row0 + s) * row, size_t(row) * sizeof(float));
    }
    row0 += c.n_tokens;
  }
  const bool one_token_each =
      std::all_of(batch.begin(), batch.end(), [](const SeqChunk& c) { return c.n_tokens == 1; });
  if (path == AttentionPath::Absorbed && batch.size() > 1 && one_token_each) {
    attend_absorbed_decode(o, q, w, batch, cache_layer);
    matmul(out, o, w.wo, N);
    return;
  }
  row0 = 0;
  for (const auto& c : batch) {
    const int64_t start = c.cache->length();
    const kernels::LatentCacheView view = c.cache->layer(cache_layer);
    float* oc = o + row0 * H_ * dv_;
    const float* qc = q + row0 * H_ * dqk_;
    if (path == AttentionPath::Absorbed) {
      attend_absorbed(oc, qc, w, view, c.n_tokens, start);
    } else {
      attend_naive(oc, qc, w, view, c.n_tokens, start);
    }
    row0 += c.n_tokens;
  }
  matmul(out, o, w.wo, N);
}

void Mla::absorb(float* q_lat, const float* q, const AttentionWeights& w, int64_t h, int64_t S) const {
  // W_UK[h] = rows h·(d_n+d_v) .. +d_n of kv_b_proj.
  const int64_t lat = r_ + dr_;
  const WeightMatrix w_uk = w.wkv_b.row_slice(h * (dn_ + dv_), dn_);
  kernels::matmul_t(q_lat + h * lat, H_ * lat, q + h * dqk_, H_ * dqk_, w_uk, S);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t i = s * H_ + h;
    std::memcpy(q_lat + i * lat + r_, q + i * dqk_ + dn_, size_t(dr_) * sizeof(float));
  }
}

void Mla::project(float* o, const float* o_lat, const AttentionWeights& w, int64_t h, int64_t S) const {
  // W_UV[h] = rows h·(d_n+d_v) + d_n .. +d_v of kv_b_proj.
  const WeightMatrix w_uv = w.wkv_b.row_slice(h * (dn_ + dv_) + dn_, dv_);
  kernels::matmul(o + h * dv_, H_ * dv_, o_lat + h * r_, H_ * r_, w_uv, S);
}

void Mla::attend_absorbed(float* o, const float* q, const AttentionWeights& w, const kernels::LatentCacheView& cache,
                          int64_t S, int64_t start) {
  const int64_t lat = r_ + dr_;
  float* q_lat = q_lat_.get(S * H_ * lat);
  float* o_lat = o_lat_.get(S * H_ * r_);
  // Parallel regions over heads, the small per-head products running serially inside them:
  // per-head regions cost more than the products at decode. With one query token a head's three
  // steps touch only that head's rows, so a single region runs absorb, attention and projection
  // for a share of the heads; with more tokens the attention's own split over (token, head) sits
  // between two regions. Every output is summed in the same order whichever way it is split.
  if (S == 1) {
    parallel_chunks(H_, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) absorb(q_lat, q, w, h, 1);
      kernels::mla_attention_latent(o_lat + h0 * r_, q_lat + h0 * lat, cache, 1, h1 - h0, r_, dr_, start, scale_);
      for (int64_t h = h0; h < h1; ++h) project(o, o_lat, w, h, 1);
    });
    return;
  }
  parallel_for(H_, [&](int64_t h) { absorb(q_lat, q, w, h, S); });
  kernels::mla_attention_latent(o_lat, q_lat, cache, S, H_, r_, dr_, start, scale_);
  parallel_for(H_, [&](int64_t h) { project(o, o_lat, w, h, S); });
}

void Mla::attend_absorbed_decode(float* o, const float* q, const AttentionWeights& w, std::span<const SeqChunk> batch,
                                 int64_t cache_layer) {
  // W_UK and W_UV are the same for every sequence: the absorption and the projection run once
  // over all N tokens (each weight read once per step, not once per sequence), and the attention
  // of every (sequence, head) pair runs in one region instead of one region per sequence.
  const int64_t N = int64_t(batch.size()), lat = r_ + dr_;
  float* q_lat = q_lat_.get(N * H_ * lat);
  float* o_lat = o_lat_.get(N * H_ * r_);
  parallel_for(H_, [&](int64_t h) { absorb(q_lat, q, w, h, N); });
  parallel_chunks(N * H_, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1;) {  // i = b·H + h: runs of heads of one sequence
      const int64_t b = i / H_, h0 = i % H_, h1 = std::min(H_, h0 + (i1 - i));
      const SequenceCache& cache = *batch[size_t(b)].cache;
      kernels::mla_attention_latent(o_lat + i * r_, q_lat + i * lat, cache.layer(cache_layer), 1, h1 - h0, r_, dr_,
                                    cache.length(), scale_);
      i += h1 - h0;
    }
  });
  parallel_for(H_, [&](int64_t h) { project(o, o_lat, w, h, N); });
}

void Mla::attend_naive(float* o, const float* q, const AttentionWeights& w, const kernels::LatentCacheView& cache,
                       int64_t S, int64_t start) {
  const int64_t T = start + S;
  const int64_t kvb_cols = H_ * (dn_ + dv_);
  // Materialize per-head k_nope and v for every cached token: kvb = c_kv · W_kvbᵀ (T, H, d_n + d_v).
  float* c_all = c_all_.get(T * r_);
  for (int64_t t = 0; t < T; ++t) std::memcpy(c_all + t * r_, cache.row(t), size_t(r_) * sizeof(float));
  float* kvb = kvb_.get(T * kvb_cols);
  matmul(kvb, c_all, w.wkv_b, T);
  // k (T, H, d_qk) = [k_nope ; k_pe broadcast over heads].
  float* k = k_.get(T * H_ * dqk_);
  for (int64_t t = 0; t < T; ++t) {
    const float* pe = cache.row(t) + r_;
    for (int64_t h = 0; h < H_; ++h) {
      float* kt = k + (t * H_ + h) * dqk_;
      std::memcpy(kt, kvb + t * kvb_cols + h * (dn_ + dv_), size_t(dn_) * sizeof(float));
      std::memcpy(kt + dn_, pe, size_t(dr_) * sizeof(float));
    }
  }
  HeadsView<float> out{o, H_ * dv_, dv_};
  HeadsView<const float> qv{q, H_ * dqk_, dqk_};
  HeadsView<const float> kv{k, H_ * dqk_, dqk_};
  HeadsView<const float> vv{kvb + dn_, kvb_cols, dn_ + dv_};
  kernels::attention_naive(out, nullptr, qv, kv, vv, S, T, H_, dqk_, dv_, start, scale_);
}

}  // namespace dsv3
