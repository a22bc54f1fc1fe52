// AVX2 path of the weight products (matmul.h).
//
// Decode (T <= kDecodeMaxT tokens): memory-bound, so each weight row is streamed exactly once
// for all T tokens. R rows x T tokens of 8-wide accumulators live in registers (R*T <= 8); for
// every 8 weights of a row: widen to f32 (times the block scale for FP8), then T FMAs against the
// tokens' activations. Each output is one FMA chain over k in order plus a fixed horizontal sum,
// so grouping rows differently (thread splits) cannot change a bit.
//
// matmul_t decodes the same way with output columns in the vector lanes (decode_t_tile).
//
// Prefill (larger T): compute-bound, so weights are widened into packed f32 panels of KC x NC
// (per thread, in L2) and reused by every token through the 6x16 micro-kernel (gemm_avx2.h).
//
// E4M3 weights are decoded with the F16C trick (simd_avx2.h); the two NaN codes, which valid
// checkpoints never hold (quantizers saturate), are not kept: they read as +-480 x scale.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/numeric.h"
#include "core/parallel_for.h"
#include "kernels/avx2.h"
#include "kernels/gemm_avx2.h"
#include "kernels/simd_avx2.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsv3::kernels::avx2 {
namespace {

constexpr int64_t kDecodeMaxT = kDecodeMaxTokens;

// Decode streams each weight row once. The hardware prefetchers alone leave one core far below
// its share of the bandwidth on this access pattern (R rows read side by side), so the bytes
// [offset, offset + len) of the row `distance` (+ 1 KiB) further on are requested ahead of use.
// Measured: FP8 T=1 2816x1024 from DRAM, 4.6 -> 9.3 GB/s on one thread (the distance was tuned).
inline void prefetch_ahead(const void* row, int64_t offset, int64_t len, int64_t distance) {
  const char* p = static_cast<const char*>(row) + offset + distance + 1024;
  for (int64_t b = 0; b < len; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}

// Eight weights of row `p` (already offset to the row) at column k, in f32. `s256` is the FP8
// block scale times 2^8 (unused for other types).
template <DType D>
inline __m256 load8(const void* p, int64_t k, __m256 s256) {
  if constexpr (D == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(p) + k);
  if constexpr (D == DType::BF16) return detail::load8_bf16(static_cast<const uint16_t*>(p) + k);
  if constexpr (D == DType::F16) return detail::load8_f16(static_cast<const uint16_t*>(p) + k);
  if constexpr (D == DType::F8_E4M3) return detail::load8_e4m3_scaled(static_cast<const uint8_t*>(p) + k, s256);
}

// y[t, n0 + r] for r < R, t < T: the decode micro-kernel described at the top.
template <DType D, int T, int R>
void decode_rows(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t n0) {
  const int64_t K = w.cols, esize = int64_t(dtype_size(D));
  const void* rows[R];
  const float* srow[R] = {};
  for (int r = 0; r < R; ++r) {
    rows[r] = static_cast<const uint8_t*>(w.data) + (n0 + r) * K * esize;
    if constexpr (D == DType::F8_E4M3) {
      srow[r] = w.scale_inv + ((w.scale_row_offset + n0 + r) / kFp8Block) * w.scale_cols();
    }
  }
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  __m256 s256[R];
  for (int r = 0; r < R; ++r) s256[r] = _mm256_setzero_ps();
  const int64_t k_main = K / 8 * 8;
  for (int64_t kb = 0; kb < k_main; kb += kFp8Block) {
    if constexpr (D == DType::F8_E4M3) {
      for (int r = 0; r < R; ++r) s256[r] = _mm256_set1_ps(srow[r][kb / kFp8Block] * 256.0f);
    }
    for (int r = 0; r < R; ++r) prefetch_ahead(rows[r], kb * esize, kFp8Block * esize, R * K * esize);
    const int64_t kend = std::min(kb + kFp8Block, k_main);
    for (int64_t k = kb; k < kend; k += 8) {
      // Fully unrolled over r and t so that acc, xv and s256 stay in registers.
      __m256 xv[T];
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256 wv = load8<D>(rows[r], k, s256[r]);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
      }
    }
  }
  if (k_main < K) {  // the last K % 8 columns, zero-padded to one more vector step
    const int64_t rem = K - k_main;
    __m256 xv[T];
    for (int t = 0; t < T; ++t) {
      alignas(32) float xt[8] = {};
      std::memcpy(xt, x + t * ldx + k_main, size_t(rem) * sizeof(float));
      xv[t] = _mm256_load_ps(xt);
    }
    for (int r = 0; r < R; ++r) {
      alignas(32) uint8_t raw[32] = {};
      std::memcpy(raw, static_cast<const uint8_t*>(rows[r]) + k_main * esize, size_t(rem * esize));
      if constexpr (D == DType::F8_E4M3) s256[r] = _mm256_set1_ps(srow[r][k_main / kFp8Block] * 256.0f);
      const __m256 wv = load8<D>(raw, 0, s256[r]);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) y[t * ldy + n0 + r] = detail::hsum(acc[r][t]);
  }
}

// FP8 decode for T <= 4, leaner than decode_rows (which multiplies every widened vector by the
// block scale): codes are widened 16 at a time to f32 values times 2^-8, summed per 128-column
// block without scaling, and each block sum is folded in with one FMA by (scale * 2^8):
//   acc[r][t] = fma(blk[r][t], scale(r, block) * 256, acc[r][t]).
// Per 16 weights and row: 8 ALU uops to widen + 2T FMAs, no multiply, which keeps the loop
// below the memory stream on one core. R*T <= 4 so blk and acc fit in registers.
template <int T, int R>
void decode_rows_fp8(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t n0) {
  // With R*T = 4 chains, two dependent FMAs per 16 weights would leave the loop latency-bound for
  // T >= 3 (R = 1: 8 cycles per 16 weights); there each half of the 16 gets its own chain. The
  // choice depends on T only, so every row is summed the same way whatever R.
  constexpr int H = T >= 3 ? 2 : 1;
  const int64_t K = w.cols;
  const uint8_t* rows[R];
  const float* srow[R];
  for (int r = 0; r < R; ++r) {
    rows[r] = static_cast<const uint8_t*>(w.data) + (n0 + r) * K;
    srow[r] = w.scale_inv + ((w.scale_row_offset + n0 + r) / kFp8Block) * w.scale_cols();
  }
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  alignas(32) uint16_t scratch[R][16];
  // One 16-column step: blk[r][t][0] (and [1] when H = 2) += w[16] * x[16], weights at
  // wbase[r] + wk, activations at xbase + t * xstride + xk.
  auto step = [&](__m256(&blk)[R][T][H], const uint8_t* const* wbase, int64_t wk, const float* xbase,
                  int64_t xstride, int64_t xk) {
    __m256 x0[T], x1[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      x0[t] = _mm256_loadu_ps(xbase + t * xstride + xk);
      x1[t] = _mm256_loadu_ps(xbase + t * xstride + xk + 8);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      __m256 w0, w1;
      // Through memory for T <= 2, where widening dominates; with more tokens per weight the
      // FMAs do, and the extra store measured slower (1-thread 2816x1024 from DRAM).
      if constexpr (T <= 2) {
        detail::e4m3x16_to_f32_unscaled_via(wbase[r] + wk, scratch[r], w0, w1);
      } else {
        detail::e4m3x16_to_f32_unscaled(wbase[r] + wk, w0, w1);
      }
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        if constexpr (H == 2) {
          blk[r][t][0] = _mm256_fmadd_ps(w0, x0[t], blk[r][t][0]);
          blk[r][t][1] = _mm256_fmadd_ps(w1, x1[t], blk[r][t][1]);
        } else {
          blk[r][t][0] = _mm256_fmadd_ps(w1, x1[t], _mm256_fmadd_ps(w0, x0[t], blk[r][t][0]));
        }
      }
    }
  };
  for (int64_t kb = 0; kb < K; kb += kFp8Block) {
    const int64_t kend = std::min(kb + kFp8Block, K);
    for (int r = 0; r < R; ++r) prefetch_ahead(rows[r], kb, kFp8Block, R * K);
    __m256 blk[R][T][H];
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        for (int h = 0; h < H; ++h) blk[r][t][h] = _mm256_setzero_ps();
      }
    }
    int64_t k = kb;
    if (kend - kb == kFp8Block) {  // whole block: a fixed trip count; unrolled more, addresses spill
#pragma GCC unroll 2
      for (int j = 0; j < kFp8Block / 16; ++j) step(blk, rows, kb + 16 * j, x, ldx, kb + 16 * j);
      k = kend;
    }
    for (; k + 16 <= kend; k += 16) step(blk, rows, k, x, ldx, k);
    if (k < kend) {  // the last 1..15 columns of K, zero-padded to 16
      const int64_t rem = kend - k;
      alignas(32) float xt[T * 16] = {};
      alignas(16) uint8_t raw[R][16] = {};
      const uint8_t* raw_rows[R];
      for (int t = 0; t < T; ++t) std::memcpy(xt + t * 16, x + t * ldx + k, size_t(rem) * sizeof(float));
      for (int r = 0; r < R; ++r) {
        std::memcpy(raw[r], rows[r] + k, size_t(rem));
        raw_rows[r] = raw[r];
      }
      step(blk, raw_rows, 0, xt, 16, 0);
    }
    for (int r = 0; r < R; ++r) {
      const __m256 s256 = _mm256_set1_ps(srow[r][kb / kFp8Block] * 256.0f);
      for (int t = 0; t < T; ++t) {
        const __m256 b = H == 2 ? _mm256_add_ps(blk[r][t][0], blk[r][t][H - 1]) : blk[r][t][0];
        acc[r][t] = _mm256_fmadd_ps(b, s256, acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) y[t * ldy + n0 + r] = detail::hsum(acc[r][t]);
  }
}

template <DType D, int T>
void decode_range(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t n0,
                  int64_t n1) {
  if constexpr (D == DType::F8_E4M3 && T <= 4) {
    constexpr int R = 4 / T;
    int64_t n = n0;
    for (; n + R <= n1; n += R) decode_rows_fp8<T, R>(y, ldy, x, ldx, w, n);
    for (; n < n1; ++n) decode_rows_fp8<T, 1>(y, ldy, x, ldx, w, n);
    return;
  }
  constexpr int R = T <= 2 ? 4 : T <= 4 ? 2 : 1;  // R*T <= 8 accumulators
  int64_t n = n0;
  for (; n + R <= n1; n += R) decode_rows<D, T, R>(y, ldy, x, ldx, w, n);
  for (; n < n1; ++n) decode_rows<D, T, 1>(y, ldy, x, ldx, w, n);
}

template <DType D>
void decode(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  parallel_chunks(w.rows, [&](int64_t n0, int64_t n1) {
    switch (T) {
      case 1: return decode_range<D, 1>(y, ldy, x, ldx, w, n0, n1);
      case 2: return decode_range<D, 2>(y, ldy, x, ldx, w, n0, n1);
      case 3: return decode_range<D, 3>(y, ldy, x, ldx, w, n0, n1);
      case 4: return decode_range<D, 4>(y, ldy, x, ldx, w, n0, n1);
      case 5: return decode_range<D, 5>(y, ldy, x, ldx, w, n0, n1);
      case 6: return decode_range<D, 6>(y, ldy, x, ldx, w, n0, n1);
      case 7: return decode_range<D, 7>(y, ldy, x, ldx, w, n0, n1);
      case 8: return decode_range<D, 8>(y, ldy, x, ldx, w, n0, n1);
      default: DSV3_FAIL("decode with T={}", T);
    }
  });
}

// y[t, c0 .. c0 + 8V) for t < T of y = x · W (matmul_t): lanes are output columns, and each lane
// is one FMA chain over the rows r in order (x[t, r] broadcast times row r of W), so a column's
// result does not depend on which tile computes it. `valid` < 8V only for the last tile: its
// weights go through a zero-padded buffer (same values, same operations).
template <DType D, int T, int V>
void decode_t_tile(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t c0,
                   int64_t valid) {
  const int64_t esize = int64_t(dtype_size(D));
  __m256 acc[T][V];
  for (int t = 0; t < T; ++t) {
    for (int v = 0; v < V; ++v) acc[t][v] = _mm256_setzero_ps();
  }
  alignas(32) float pad[8 * V] = {};
  __m256 s256 = _mm256_setzero_ps();
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + (r * w.cols + c0) * esize;
    if constexpr (D == DType::F8_E4M3) {  // tiles never straddle a 128-column block (8V divides 128)
      s256 = _mm256_set1_ps(w.scale_inv[((w.scale_row_offset + r) / kFp8Block) * w.scale_cols() + c0 / kFp8Block] *
                            256.0f);
    }
    __m256 wv[V];
    if (valid == 8 * V) {
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) wv[v] = load8<D>(row, 8 * v, s256);
    } else {
      dequantize_run(pad, w, r, c0, valid);
      for (int v = 0; v < V; ++v) wv[v] = _mm256_load_ps(pad + 8 * v);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m256 xb = _mm256_broadcast_ss(x + t * ldx + r);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[t][v] = _mm256_fmadd_ps(xb, wv[v], acc[t][v]);
    }
  }
  for (int t = 0; t < T; ++t) {
    alignas(32) float out[8 * V];
    for (int v = 0; v < V; ++v) _mm256_store_ps(out + 8 * v, acc[t][v]);
    std::memcpy(y + t * ldy + c0, out, size_t(valid) * sizeof(float));
  }
}

template <DType D, int T>
void decode_t(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w) {
  constexpr int V = T == 1 ? 8 : T == 2 ? 4 : T <= 4 ? 2 : 1;  // T*V <= 8 accumulators
  constexpr int64_t kTile = 8 * V;
  const int64_t tiles = (w.cols + kTile - 1) / kTile;
  parallel_chunks(tiles, [&](int64_t t0, int64_t t1) {
    for (int64_t i = t0; i < t1; ++i) {
      const int64_t c0 = i * kTile;
      decode_t_tile<D, T, V>(y, ldy, x, ldx, w, c0, std::min(kTile, w.cols - c0));
    }
  });
}

template <DType D>
void decode_t(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  switch (T) {
    case 1: return decode_t<D, 1>(y, ldy, x, ldx, w);
    case 2: return decode_t<D, 2>(y, ldy, x, ldx, w);
    case 3: return decode_t<D, 3>(y, ldy, x, ldx, w);
    case 4: return decode_t<D, 4>(y, ldy, x, ldx, w);
    case 5: return decode_t<D, 5>(y, ldy, x, ldx, w);
    case 6: return decode_t<D, 6>(y, ldy, x, ldx, w);
    case 7: return decode_t<D, 7>(y, ldy, x, ldx, w);
    case 8: return decode_t<D, 8>(y, ldy, x, ldx, w);
    default: DSV3_FAIL("decode with T={}", T);
  }
}

// Wᵀ as the B operand (B[k, j] = W[j, k]): each weight row is widened into a stack buffer and
// written as one column of the panel.
class WeightTransposedB final : public BPanelSource {
 public:
  explicit WeightTransposedB(const WeightMatrix& w) : w_(w) {}
  // Each micro-panel's 16 weight rows are widened into a (16, nk) buffer, then transposed into
  // the panel 8x8 at a time (a scalar store per value before: ~10 % of a prefill).
  void pack(float* dst, int64_t k0, int64_t nk, int64_t j0, int64_t nj) const override {
    alignas(32) float rows[kNR * kKC];
    for (int64_t p = 0; p < nj; p += kNR, dst += nk * kNR) {
      const int64_t cols = std::min(kNR, nj - p);
      for (int64_t j = 0; j < cols; ++j) dequantize_run(rows + j * nk, w_, j0 + p + j, k0, nk);
      std::fill(rows + cols * nk, rows + kNR * nk, 0.0f);
      pack_rows_as_b_panel(dst, rows, nk, nk);
    }
  }

 private:
  const WeightMatrix& w_;
};

// W as the B operand (B[k, j] = W[k, j]), for matmul_t.
class WeightB final : public BPanelSource {
 public:
  explicit WeightB(const WeightMatrix& w) : w_(w) {}
  void pack(float* dst, int64_t k0, int64_t nk, int64_t j0, int64_t nj) const override {
    alignas(32) float row[kNC];
    const int64_t panels = (nj + kNR - 1) / kNR;
    for (int64_t k = 0; k < nk; ++k) {
      dequantize_run(row, w_, k0 + k, j0, nj);
      std::fill(row + nj, row + panels * kNR, 0.0f);
      for (int64_t p = 0; p < panels; ++p) {
        float* d = dst + p * nk * kNR + k * kNR;
        _mm256_store_ps(d, _mm256_load_ps(row + p * kNR));
        _mm256_store_ps(d + 8, _mm256_load_ps(row + p * kNR + 8));
      }
    }
  }

 private:
  const WeightMatrix& w_;
};

}  // namespace

void dequantize_run(float* out, const WeightMatrix& w, int64_t r, int64_t c0, int64_t n) {
  const int64_t off = r * w.cols + c0;
  int64_t i = 0;
  switch (w.dtype) {
    case DType::F32:
      std::memcpy(out, static_cast<const float*>(w.data) + off, size_t(n) * sizeof(float));
      return;
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + off;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, detail::load8_bf16(p + i));
      for (; i < n; ++i) out[i] = bf16_to_f32(p[i]);
      return;
    }
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + off;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, detail::load8_f16(p + i));
      for (; i < n; ++i) out[i] = f16_to_f32(p[i]);
      return;
    }
    case DType::F8_E4M3: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + off;
      const float* srow = w.scale_inv + ((w.scale_row_offset + r) / kFp8Block) * w.scale_cols();
      while (i < n) {  // one 128-column scale block (or the part of it inside the run) at a time
        const int64_t c = c0 + i;
        const int64_t end = std::min(n, i + kFp8Block - c % kFp8Block);
        const float s = srow[c / kFp8Block];
        const __m256 s256 = _mm256_set1_ps(s * 256.0f);
        for (; i + 8 <= end; i += 8) _mm256_storeu_ps(out + i, detail::load8_e4m3_scaled(p + i, s256));
        for (; i < end; ++i) out[i] = e4m3_to_f32(p[i]) * s;
      }
      return;
    }
    default: DSV3_FAIL("weight dtype {} is not supported by matmul", dtype_name(w.dtype));
  }
}

void matmul(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  if (T <= kDecodeMaxT) {
    switch (w.dtype) {
      case DType::F32: return decode<DType::F32>(y, ldy, x, ldx, w, T);
      case DType::BF16: return decode<DType::BF16>(y, ldy, x, ldx, w, T);
      case DType::F16: return decode<DType::F16>(y, ldy, x, ldx, w, T);
      case DType::F8_E4M3: return decode<DType::F8_E4M3>(y, ldy, x, ldx, w, T);
      default: DSV3_FAIL("weight dtype {} is not supported by matmul", dtype_name(w.dtype));
    }
  }
  const F32PanelsA a(x, ldx, false);
  const WeightTransposedB b(w);
  const int64_t tiles = (w.rows + kNR - 1) / kNR;  // threads own 16-feature column tiles of y
  parallel_chunks(tiles, [&](int64_t t0, int64_t t1) {
    gemm_blocked(y, ldy, 0, T, t0 * kNR, std::min(w.rows, t1 * kNR), w.cols, a, b, false);
  });
}

void matmul_t(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  if (T <= kDecodeMaxT) {
    switch (w.dtype) {
      case DType::F32: return decode_t<DType::F32>(y, ldy, x, ldx, w, T);
      case DType::BF16: return decode_t<DType::BF16>(y, ldy, x, ldx, w, T);
      case DType::F16: return decode_t<DType::F16>(y, ldy, x, ldx, w, T);
      case DType::F8_E4M3: return decode_t<DType::F8_E4M3>(y, ldy, x, ldx, w, T);
      default: DSV3_FAIL("weight dtype {} is not supported by matmul", dtype_name(w.dtype));
    }
  }
  const F32PanelsA a(x, ldx, false);
  const WeightB b(w);
  const int64_t tiles = (w.cols + kNR - 1) / kNR;
  parallel_chunks(tiles, [&](int64_t t0, int64_t t1) {
    gemm_blocked(y, ldy, 0, T, t0 * kNR, std::min(w.cols, t1 * kNR), w.rows, a, b, false);
  });
}

}  // namespace dsv3::kernels::avx2

#pragma GCC pop_options
