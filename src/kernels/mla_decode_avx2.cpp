// AVX2 path (with AVX-512 twins) of the absorbed-MLA attention for decode-sized query blocks
// (S <= kDecodeMaxTokens; attention.h). The GEMM path's fork/joins and packing, per cache page as
// it then was, made attention over a 600-token context take a third of a decode step. Here one
// parallel region splits the S·H queries. A thread takes its queries of one token (same visible
// keys) together, in groups of up to four, and walks the cache in blocks of kKeyBlock
// rows so that a block is read from memory once and then serves every group from L1 (a
// 2000-token context is 2.4 MB per layer, more than L2: one pass per group re-read it from L3;
// blocks of 16/32/64/128 rows measured 76/74-94/69-92/68-84 GFLOP/s, bench attention_bench.cpp):
//   1. scores, block by block: 2 cache rows x 4 queries of 8-wide FMA chains over r + d_r,
//      reduced with a fixed horizontal-add tree (6 loads per 8 FMAs);
//   2. softmax over the visible keys, with the vectorized exponential of exp_rows.h;
//   3. o_lat, block by block: 16 latent dims x 4 queries in registers, carried across blocks in
//      o_lat itself.
// A query's result depends only on its own inputs, never on which thread, group or key block
// computed it (every score and output is one chain in a fixed order; a partial sum stored in o_lat
// between blocks is exact), so any thread count gives the same bits.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel_for.h"
#include "kernels/avx2.h"
#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "kernels/simd_avx2.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsv3::kernels::avx2 {
namespace {

constexpr int kMaxGroup = 4;         // queries attended together
constexpr int64_t kKeyBlock = 32;    // cache rows per block: 36 KB at r + d_r = 288 (L1)

// Per-thread float buffers, grown to the largest request and then kept: slot 0 holds the score
// rows (callers ask for queries x the cache capacity, not the context, so it grows once), slot 1
// the AVX-512 path's interleaved query pairs.
enum ScratchSlot { kScoreRows = 0, kQueryPairs = 1 };
float* thread_floats(ScratchSlot slot, int64_t n) {
  thread_local std::vector<float> buf[2];
  if (int64_t(buf[slot].size()) < n) buf[slot].resize(size_t(n));
  return buf[slot].data();
}

// The scalar part of a score, dims [lat8, lat) (0 when lat is a multiple of 8), added last.
inline float score_tail(const float* qg, const float* row, int64_t lat8, int64_t lat) {
  float x = 0.0f;
  for (int64_t j = lat8; j < lat; ++j) x += qg[j] * row[j];
  return x;
}

// Addresses of cache rows 0..n), page by page (LatentCacheView::row divides per call, which cost
// more than the arithmetic of a row in the inner loops). Per thread, grown once like thread_floats.
const float* const* cache_rows(const LatentCacheView& cache, int64_t n) {
  thread_local std::vector<const float*> buf;
  if (int64_t(buf.size()) < cache.capacity) buf.resize(size_t(cache.capacity));
  for (int64_t t0 = 0, page = 0; t0 < n; t0 += cache.page_size, ++page) {
    const float* base = cache.pages[page] + cache.offset;
    const int64_t m = std::min(cache.page_size, n - t0);
    for (int64_t k = 0; k < m; ++k) buf[size_t(t0 + k)] = base + k * cache.row_stride;
  }
  return buf.data();
}

// Sums of four accumulators, in order, as one vector of 4: ((a0 a1) (a2 a3)) pairwise.
inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// s[g][t] = q_g · row_t for t < n, g < G (G = 1, 2 or 4), over `lat` dims (8-wide part
// vectorized, the rest scalar and added last). KB keys per step keep G·KB = 8 accumulators; a
// key's sum is the same chain and the same reduction tree whatever G and KB.
template <int G>
void scores(float* const* s, const float* const* q, const float* const* row_ptr, int64_t n, int64_t lat) {
  const int64_t lat8 = lat / 8 * 8;
  constexpr int KB = G == 4 ? 2 : 4;
  int64_t t = 0;
  for (; t + KB <= n; t += KB) {
    const float* rows[KB];
    for (int k = 0; k < KB; ++k) rows[k] = row_ptr[t + k];
    __m256 acc[G][4];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) acc[g][k] = _mm256_setzero_ps();
    for (int64_t j = 0; j < lat8; j += 8) {
      __m256 qv[G];
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) qv[g] = _mm256_loadu_ps(q[g] + j);
#pragma GCC unroll 4
      for (int k = 0; k < KB; ++k) {
        const __m256 rv = _mm256_loadu_ps(rows[k] + j);
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) acc[g][k] = _mm256_fmadd_ps(qv[g], rv, acc[g][k]);
      }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      alignas(16) float out[4];
      _mm_store_ps(out, hsum4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]));
      for (int k = 0; k < KB; ++k) s[g][t + k] = out[k] + score_tail(q[g], rows[k], lat8, lat);
    }
  }
  for (; t < n; ++t) {  // the last n % 4 keys: the same chain per key, a zero vector for the others
    const float* row = row_ptr[t];
    __m256 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm256_setzero_ps();
    for (int64_t j = 0; j < lat8; j += 8) {
      const __m256 rv = _mm256_loadu_ps(row + j);
      for (int g = 0; g < G; ++g) acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q[g] + j), rv, acc[g]);
    }
    const __m256 z = _mm256_setzero_ps();
    for (int g = 0; g < G; ++g) {
      s[g][t] = _mm_cvtss_f32(hsum4(acc[g], z, z, z)) + score_tail(q[g], row, lat8, lat);
    }
  }
}

// o[g][0..r) (+)= Σ_t p[g][t] · row_t[0..r), keys in order, for g < G: V = 8 / G vectors of dims
// per query in registers per pass over the keys; `carry` continues the sums already in o (the
// previous key blocks); dims before j_begin are left alone. Every output is one FMA chain over t,
// so the result does not depend on G, V or the blocks (the scalar tail uses the same fused
// multiply-add).
template <int G>
void weighted_rows(float* const* o, const float* const* p, const float* const* row_ptr, int64_t n, int64_t r,
                   bool carry, int64_t j_begin = 0) {
  constexpr int V = G == 4 ? 2 : 4;
  int64_t j0 = j_begin;
  for (; j0 + 8 * V <= r; j0 += 8 * V) {
    __m256 acc[G][V];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[g][v] = carry ? _mm256_loadu_ps(o[g] + j0 + 8 * v) : _mm256_setzero_ps();
    for (int64_t t = 0; t < n; ++t) {
      const float* row = row_ptr[t] + j0;
      __m256 pv[G];
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) pv[g] = _mm256_broadcast_ss(p[g] + t);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        const __m256 rv = _mm256_loadu_ps(row + 8 * v);
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) acc[g][v] = _mm256_fmadd_ps(pv[g], rv, acc[g][v]);
      }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) _mm256_storeu_ps(o[g] + j0 + 8 * v, acc[g][v]);
  }
  for (; j0 < r; ++j0) {  // the last dims, one at a time, keys in the same order
    for (int g = 0; g < G; ++g) {
      float acc = carry ? o[g][j0] : 0.0f;
      for (int64_t t = 0; t < n; ++t) acc = std::fma(p[g][t], row_ptr[t][j0], acc);
      o[g][j0] = acc;
    }
  }
}

// AVX-512 twins for groups of four queries (the kAvx512 path), the same bits as the AVX2 code:
//  - scores: a ZMM holds two queries' 8-lane chains side by side ([q_g | q_g+1], interleaved once
//    per token into `qpair`) against one key's 8 values broadcast to both halves; 2 pairs x 8 keys
//    = 16 accumulators, 10 loads per 16 FMAs of 16 lanes (AVX2: 6 loads per 8 FMAs of 8). Each
//    half is the AVX2 chain of that (query, key), reduced with the same hsum4 tree.
//  - outputs: 16 latent dims per ZMM, 4 queries x 4 ZMM; every output is its own chain over t in
//    order, whatever the width.
#define DSV3_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
// GCC 12's avx512fintrin.h builds the 256-bit broadcast and the cast down to 256 bits from an
// `_mm512_undefined` operand, which -Wmaybe-uninitialized reports at every use (a false positive,
// silent in later GCC).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// qpair[(p * L + js) * 16 + h * 8 + l] = q_{2p+h}[8 js + l], L = lat / 8: pairs (0,1) and (2,3).
DSV3_AVX512 void interleave_pairs(float* qpair, const float* const* q, int64_t lat) {
  const int64_t L = lat / 8;
  for (int p = 0; p < 2; ++p) {
    for (int64_t js = 0; js < L; ++js) {
      float* d = qpair + (p * L + js) * 16;
      _mm256_storeu_ps(d, _mm256_loadu_ps(q[2 * p] + 8 * js));
      _mm256_storeu_ps(d + 8, _mm256_loadu_ps(q[2 * p + 1] + 8 * js));
    }
  }
}

DSV3_AVX512 inline __m256 low_half(__m512 v) { return _mm512_castps512_ps256(v); }
DSV3_AVX512 inline __m256 high_half(__m512 v) { return _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xEE)); }

// scores<4> for the first n / 8 * 8 keys; returns how many keys it did.
DSV3_AVX512 int64_t scores4_avx512(float* const* s, const float* qpair, const float* const* q,
                                   const float* const* row_ptr, int64_t n, int64_t lat) {
  constexpr int KB = 8;
  const int64_t L = lat / 8, lat8 = L * 8;
  int64_t t = 0;
  for (; t + KB <= n; t += KB) {
    const float* rows[KB];
    for (int k = 0; k < KB; ++k) rows[k] = row_ptr[t + k];
    __m512 acc[2][KB];
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) acc[0][k] = acc[1][k] = _mm512_setzero_ps();
    for (int64_t js = 0; js < L; ++js) {
      const __m512 q0 = _mm512_loadu_ps(qpair + js * 16), q1 = _mm512_loadu_ps(qpair + (L + js) * 16);
#pragma GCC unroll 8
      for (int k = 0; k < KB; ++k) {
        const __m512 rv = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(rows[k] + 8 * js))));
        acc[0][k] = _mm512_fmadd_ps(q0, rv, acc[0][k]);
        acc[1][k] = _mm512_fmadd_ps(q1, rv, acc[1][k]);
      }
    }
    for (int g = 0; g < 4; ++g) {
      const __m512* a = acc[g / 2];
      auto half = [&](int k) { return g % 2 == 0 ? low_half(a[k]) : high_half(a[k]); };
      alignas(16) float out[KB];
      _mm_store_ps(out, hsum4(half(0), half(1), half(2), half(3)));
      _mm_store_ps(out + 4, hsum4(half(4), half(5), half(6), half(7)));
      for (int k = 0; k < KB; ++k) s[g][t + k] = out[k] + score_tail(q[g], rows[k], lat8, lat);
    }
  }
  return t;
}

// weighted_rows<4> for dims [0, r / 64 * 64); returns the first dim it left.
DSV3_AVX512 int64_t weighted_rows4_avx512(float* const* o, const float* const* p, const float* const* row_ptr,
                                          int64_t n, int64_t r, bool carry) {
  constexpr int V = 4;
  int64_t j0 = 0;
  for (; j0 + 16 * V <= r; j0 += 16 * V) {
    __m512 acc[4][V];
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[g][v] = carry ? _mm512_loadu_ps(o[g] + j0 + 16 * v) : _mm512_setzero_ps();
    for (int64_t t = 0; t < n; ++t) {
      const float* row = row_ptr[t] + j0;
      __m512 pv[4];
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) pv[g] = _mm512_set1_ps(p[g][t]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        const __m512 rv = _mm512_loadu_ps(row + 16 * v);
#pragma GCC unroll 4
        for (int g = 0; g < 4; ++g) acc[g][v] = _mm512_fmadd_ps(pv[g], rv, acc[g][v]);
      }
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) _mm512_storeu_ps(o[g] + j0 + 16 * v, acc[g][v]);
  }
  return j0;
}
#pragma GCC diagnostic pop

// One group of G queries (indices i .. i + G of q and o_lat), with its score rows.
struct Group {
  int64_t i;
  int G;
  float* s;
  const float* qpair;  // the AVX-512 path's interleaved queries (G = 4), else null
};

template <int G>
void group_scores(const Group& grp, const float* q, const float* const* rows, int64_t t0, int64_t nb, int64_t lat,
                  int64_t stride) {
  float* s[G];
  const float* qs[G];
  for (int g = 0; g < G; ++g) {
    s[g] = grp.s + g * stride + t0;
    qs[g] = q + (grp.i + g) * lat;
  }
  int64_t done = 0;
  if constexpr (G == 4) {
    if (grp.qpair != nullptr) done = scores4_avx512(s, grp.qpair, qs, rows + t0, nb, lat);
  }
  if (done < nb) {
    for (int g = 0; g < G; ++g) s[g] += done;
    scores<G>(s, qs, rows + t0 + done, nb - done, lat);
  }
}

template <int G>
void group_outputs(const Group& grp, float* o_lat, const float* const* rows, int64_t t0, int64_t nb, int64_t r,
                   int64_t stride) {
  float* o[G];
  const float* p[G];
  for (int g = 0; g < G; ++g) {
    o[g] = o_lat + (grp.i + g) * r;
    p[g] = grp.s + g * stride + t0;
  }
  int64_t j_begin = 0;
  if constexpr (G == 4) {
    if (grp.qpair != nullptr) j_begin = weighted_rows4_avx512(o, p, rows + t0, nb, r, t0 > 0);
  }
  if (j_begin < r) weighted_rows<G>(o, p, rows + t0, nb, r, t0 > 0, j_begin);
}

// Queries [i0, i1) of one token, each seeing keys 0 .. n: groups of 4 (then 2, 1), key-blocked.
// `capacity` (the cache's) sizes the score rows, so they grow once rather than with n.
void attend_token(float* o_lat, const float* q, const float* const* rows, int64_t i0, int64_t i1, int64_t n,
                  int64_t capacity, int64_t r, int64_t lat, float scale) {
  float* s0 = thread_floats(kScoreRows, (i1 - i0) * capacity);
  thread_local std::vector<Group> groups;  // grows to the most heads per share, then stays
  groups.clear();
  const bool wide = kernel_path() == KernelPath::kAvx512 && lat >= 8;
  float* qpairs = wide ? thread_floats(kQueryPairs, (i1 - i0) * (lat / 8 * 8)) : nullptr;
  for (int64_t i = i0; i < i1;) {
    const int G = i1 - i >= kMaxGroup ? kMaxGroup : i1 - i >= 2 ? 2 : 1;
    const float* qpair = nullptr;
    if (wide && G == 4) {
      float* d = qpairs + (i - i0) * (lat / 8 * 8);
      const float* qs[4] = {q + i * lat, q + (i + 1) * lat, q + (i + 2) * lat, q + (i + 3) * lat};
      interleave_pairs(d, qs, lat);
      qpair = d;
    }
    groups.push_back(Group{i, G, s0 + (i - i0) * n, qpair});
    i += G;
  }
  auto each_group = [&](auto&& f4, auto&& f2, auto&& f1) {
    for (const Group& g : groups) {
      if (g.G == 4) {
        f4(g);
      } else if (g.G == 2) {
        f2(g);
      } else {
        f1(g);
      }
    }
  };
  for (int64_t t0 = 0; t0 < n; t0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, n - t0);
    each_group([&](const Group& g) { group_scores<4>(g, q, rows, t0, nb, lat, n); },
               [&](const Group& g) { group_scores<2>(g, q, rows, t0, nb, lat, n); },
               [&](const Group& g) { group_scores<1>(g, q, rows, t0, nb, lat, n); });
  }
  for (int64_t i = i0; i < i1; ++i) {  // softmax of scale·scores with the vectorized exp (exp_rows.h)
    float* s = s0 + (i - i0) * n;
    const float shift = scale * row_max(s, n);
    const double sum = row_sum_exp(s, n, scale, shift);
    row_exp(s, s, n, scale, shift, float(1.0 / sum), false);  // the probabilities, in place
  }
  for (int64_t t0 = 0; t0 < n; t0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, n - t0);
    each_group([&](const Group& g) { group_outputs<4>(g, o_lat, rows, t0, nb, r, n); },
               [&](const Group& g) { group_outputs<2>(g, o_lat, rows, t0, nb, r, n); },
               [&](const Group& g) { group_outputs<1>(g, o_lat, rows, t0, nb, r, n); });
  }
}

}  // namespace

void mla_attention_decode(float* o_lat, const float* q, const LatentCacheView& cache, int64_t S, int64_t H,
                          int64_t r, int64_t d_r, int64_t start_pos, float scale) {
  const int64_t lat = r + d_r;
  parallel_chunks(S * H, [&](int64_t begin, int64_t end) {
    // Rows visible to the last query of this thread's share; earlier queries see a prefix.
    const float* const* rows = cache_rows(cache, start_pos + (end - 1) / H + 1);
    for (int64_t i = begin; i < end;) {  // the share's queries, one token at a time
      const int64_t s = i / H, i1 = std::min(end, (s + 1) * H);
      attend_token(o_lat, q, rows, i, i1, start_pos + s + 1, cache.capacity, r, lat, scale);
      i = i1;
    }
  });
}

}  // namespace dsv3::kernels::avx2

#undef DSV3_AVX512
#pragma GCC pop_options
