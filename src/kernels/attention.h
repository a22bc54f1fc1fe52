// Causal attention cores of MLA (spec §2.3). Both take a query block of S tokens whose first
// token sits at absolute position `start_pos`; query s may attend to key t iff t <= start_pos + s
// (the full [S, T] mask, correct for chunked prefill and multi-token verification).
//
// attention_naive: per-head K and V materialized (the HF path; the slow twin).
// mla_attention_latent: the absorbed path over the latent cache: scores are
//   σ·(q_abs·c_kv_t + q_pe·k_pe_t) and the output stays in the kv_lora_rank latent space
//   (the caller applies W_UV and W_O).
#pragma once

#include <cstdint>

namespace dsv3::kernels {

// A strided (token, head, dim) tensor: element (t, h, j) at data[t * tok_stride + h * head_stride + j].
template <typename T>
struct HeadsView {
  T* data;
  int64_t tok_stride;
  int64_t head_stride;
  T* at(int64_t t, int64_t h) const { return data + t * tok_stride + h * head_stride; }
};

// out (S, H, dv) = softmax_t(scale · q·k + mask) · v.  q (S, H, dqk), k (T, H, dqk), v (T, H, dv);
// T >= start_pos + S. probs, when non-null, receives the (H, S, T) probabilities (0 where masked).
void attention_naive(HeadsView<float> out, float* probs, HeadsView<const float> q, HeadsView<const float> k,
                     HeadsView<const float> v, int64_t S, int64_t T, int64_t H, int64_t dqk, int64_t dv,
                     int64_t start_pos, float scale);

// Backward of attention_naive (same dims) from its saved probabilities p (H, S, T):
//   dv_t += Σ_s p_st·dout_s;  ds_st = p_st·(dout_s·v_t − Σ_t' p_st'·dout_s·v_t');
//   dq_s += scale·Σ_t ds_st·k_t;  dk_t += scale·Σ_s ds_st·q_s.
// dq (S, H, dqk), dk (T, H, dqk), dv (T, H, dv) ACCUMULATE. Threads split the heads; within a head
// every sum runs over s then t in order, so results do not depend on the thread count.
void attention_naive_backward(HeadsView<float> dq, HeadsView<float> dk, HeadsView<float> dv,
                              HeadsView<const float> dout, const float* probs, HeadsView<const float> q,
                              HeadsView<const float> k, HeadsView<const float> v, int64_t S, int64_t T, int64_t H,
                              int64_t dqk, int64_t dv_dim, int64_t start_pos, float scale);

// The latent KV cache of one sequence and one layer, in pages of `page_size` token rows.
// Row t = pages[t / page_size] + offset + (t % page_size) * row_stride holds [c_kv (r) ; k_pe (d_r)].
struct LatentCacheView {
  float* const* pages;
  int64_t page_size;
  int64_t row_stride;
  int64_t offset;    // of this layer's rows inside a page
  int64_t capacity;  // tokens the pages can hold: scratch is sized by it, so decode never reallocates
  float* row(int64_t t) const { return pages[t / page_size] + offset + (t % page_size) * row_stride; }
};

// o_lat (S, H, r) = Σ_t p[s,h,t] · c_kv_t with p = softmax_t(scale·(q_abs·c_kv_t + q_pe·k_pe_t)),
// over t <= start_pos + s. q (S, H, r + d_r) holds [q_abs ; q_pe] per head, contiguous, so one dot
// product with a cache row [c_kv ; k_pe] gives the whole score.
//
// The fast path treats the S·H query vectors as the rows of a matrix and the visible cache rows,
// gathered once per call, as another: scores = Q·Rowsᵀ and o_lat = P·C are FP32 GEMMs (queries in
// blocks of kQueryBlock tokens bound the score buffer). Decode-sized blocks (S <= kDecodeMaxTokens) on the
// AVX2 path skip the GEMMs: one parallel region over the queries, register-blocked dot products
// and weighted sums straight off the cache pages (mla_decode_avx2.cpp). The _ref twin is one query
// and one key at a time.
void mla_attention_latent(float* o_lat, const float* q, const LatentCacheView& cache, int64_t S, int64_t H,
                          int64_t r, int64_t d_r, int64_t start_pos, float scale);
void mla_attention_latent_ref(float* o_lat, const float* q, const LatentCacheView& cache, int64_t S, int64_t H,
                              int64_t r, int64_t d_r, int64_t start_pos, float scale);

}  // namespace dsv3::kernels
