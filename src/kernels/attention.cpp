#include "kernels/attention.h"

#include <algorithm>
#include <vector>

#include "core/parallel_for.h"
#include "kernels/activation.h"
#include "kernels/avx2.h"
#include "kernels/dispatch.h"
#include "kernels/dot8.h"
#include "kernels/exp_rows.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"

namespace dsv3::kernels {
namespace {

// Per-thread score buffer: grows to the longest context seen, then never reallocates.
float* score_scratch(int64_t n) {
  thread_local std::vector<float> buf;
  if (int64_t(buf.size()) < n) buf.resize(size_t(n));
  return buf.data();
}

float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

// Buffers of the GEMM path, one set per calling thread (the GEMMs parallelize inside): slot 0
// the scores, slot 1 the gathered cache rows; grown once, then kept.
float* gemm_scratch(int slot, int64_t n) {
  thread_local std::vector<float> buf[2];
  if (int64_t(buf[slot].size()) < n) buf[slot].resize(size_t(n));
  return buf[slot].data();
}

// Query tokens per block of the GEMM path: bounds the score buffer at kQueryBlock·H·capacity.
constexpr int64_t kQueryBlock = 64;

}  // namespace

void attention_naive(HeadsView<float> out, float* probs, HeadsView<const float> q, HeadsView<const float> k,
                     HeadsView<const float> v, int64_t S, int64_t T, int64_t H, int64_t dqk, int64_t dv,
                     int64_t start_pos, float scale) {
  parallel_for(S * H, [&](int64_t i) {
    const int64_t s = i / H, h = i % H;
    const int64_t n = start_pos + s + 1;  // visible keys
    float* p = score_scratch(n);
    const float* qs = q.at(s, h);
    for (int64_t t = 0; t < n; ++t) p[t] = scale * dot(qs, k.at(t, h), dqk);
    softmax_row(p, n);
    float* o = out.at(s, h);
    std::fill(o, o + dv, 0.0f);
    for (int64_t t = 0; t < n; ++t) {
      const float* vt = v.at(t, h);
      for (int64_t j = 0; j < dv; ++j) o[j] += p[t] * vt[j];
    }
    if (probs != nullptr) {
      float* row = probs + (h * S + s) * T;
      std::copy(p, p + n, row);
      std::fill(row + n, row + T, 0.0f);
    }
  });
}

void attention_naive_backward(HeadsView<float> dq, HeadsView<float> dk, HeadsView<float> dv,
                              HeadsView<const float> dout, const float* probs, HeadsView<const float> q,
                              HeadsView<const float> k, HeadsView<const float> v, int64_t S, int64_t T, int64_t H,
                              int64_t dqk, int64_t dv_dim, int64_t start_pos, float scale) {
  parallel_for(H, [&](int64_t h) {
    float* ds = score_scratch(T);
    for (int64_t s = 0; s < S; ++s) {
      const int64_t n = start_pos + s + 1;  // visible keys
      const float* p = probs + (h * S + s) * T;
      const float* go = dout.at(s, h);
      double pdp = 0.0;  // Σ_t p_t · dp_t
      for (int64_t t = 0; t < n; ++t) {
        ds[t] = dot8(go, v.at(t, h), dv_dim);  // dp_t
        pdp += double(p[t]) * double(ds[t]);
      }
      for (int64_t t = 0; t < n; ++t) ds[t] = scale * p[t] * (ds[t] - float(pdp));
      float* gq = dq.at(s, h);
      const float* qs = q.at(s, h);
      for (int64_t t = 0; t < n; ++t) {
        const float* kt = k.at(t, h);
        float* gk = dk.at(t, h);
        float* gv = dv.at(t, h);
        for (int64_t j = 0; j < dqk; ++j) {
          gq[j] += ds[t] * kt[j];
          gk[j] += ds[t] * qs[j];
        }
        for (int64_t j = 0; j < dv_dim; ++j) gv[j] += p[t] * go[j];
      }
    }
  });
}

void mla_attention_latent_ref(float* o_lat, const float* q, const LatentCacheView& cache, int64_t S, int64_t H,
                              int64_t r, int64_t d_r, int64_t start_pos, float scale) {
  parallel_for(S * H, [&](int64_t i) {
    const int64_t s = i / H;
    const int64_t n = start_pos + s + 1;
    float* p = score_scratch(cache.capacity);
    const float* qi = q + i * (r + d_r);
    for (int64_t t = 0; t < n; ++t) p[t] = scale * dot(qi, cache.row(t), r + d_r);
    softmax_row(p, n);
    float* o = o_lat + i * r;
    std::fill(o, o + r, 0.0f);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = cache.row(t);
      for (int64_t j = 0; j < r; ++j) o[j] += p[t] * row[j];
    }
  });
}

void mla_attention_latent(float* o_lat, const float* q, const LatentCacheView& cache, int64_t S, int64_t H,
                          int64_t r, int64_t d_r, int64_t start_pos, float scale) {
  if (avx2_kernels() && S <= kDecodeMaxTokens) {
    return avx2::mla_attention_decode(o_lat, q, cache, S, H, r, d_r, start_pos, scale);
  }
  const int64_t lat = r + d_r, T = start_pos + S;
  // The visible cache rows, gathered into one (T, lat) matrix: each product below is then one GEMM
  // over all keys. Per page, the score GEMM re-packed the queries for every page (10 % of a
  // 2048-token prefill) and the output GEMM re-read and re-wrote o_lat per page.
  float* rows = gemm_scratch(1, cache.capacity * lat);
  for (int64_t t = 0; t < T; ++t) std::copy(cache.row(t), cache.row(t) + lat, rows + t * lat);
  // Scores of a block of kQueryBlock query tokens (all heads) against every visible key; sized by
  // the cache capacity so decode steps never reallocate.
  const int64_t block = std::min<int64_t>(S, kQueryBlock);
  float* scores = gemm_scratch(0, block * H * cache.capacity);
  for (int64_t s0 = 0; s0 < S; s0 += block) {
    const int64_t sb = std::min(block, S - s0), M = sb * H;
    const int64_t keys = start_pos + s0 + sb;  // keys visible to the block's last query
    const float* qb = q + s0 * H * lat;
    // scores (M, keys) = Q (M, r + d_r) · Rowsᵀ.
    gemm(scores, keys, qb, lat, Op::N, rows, lat, Op::T, M, keys, lat, false);
    // Causal mask, scale and softmax per row (query s sees keys t <= start_pos + s), with the
    // vectorized exponential of exp_rows.h: std::exp here was 7 % of a 2048-token prefill.
    parallel_for(M, [&](int64_t i) {
      float* row = scores + i * keys;
      const int64_t visible = start_pos + s0 + i / H + 1;
      const float shift = scale * row_max(row, visible);
      const double sum = row_sum_exp(row, visible, scale, shift);
      row_exp(row, row, visible, scale, shift, float(1.0 / sum), false);
      std::fill(row + visible, row + keys, 0.0f);
    });
    // o_lat (M, r) = P (M, keys) · C (keys, r): the first r columns of the gathered rows.
    gemm(o_lat + s0 * H * r, r, scores, keys, Op::N, rows, lat, Op::N, M, r, keys, false);
  }
}

}  // namespace dsv3::kernels
