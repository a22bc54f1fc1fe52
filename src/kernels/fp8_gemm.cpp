// FP8 GEMM: the plain twin (the arithmetic of fp8_gemm.h as loops), the AVX2 fast path, the FP64
// reference and the limited-accumulation emulation.
#include "kernels/fp8_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "core/parallel_for.h"
#include "kernels/dispatch.h"

namespace dsv3::kernels {

Fp8Rhs fprop_rhs(const Fp8WeightView& w) {
  // B[k, n] = W[n, k]: transposed codes; scale(kb, n) = s[n/128, kb], the block grid read transposed.
  return Fp8Rhs{.q = w.qt, .s = w.s, .K = w.K, .N = w.N, .n_group = kFp8Group, .s_stride_k = 1,
                .s_stride_n = fp8_groups(w.K)};
}

Fp8Rhs dgrad_rhs(const Fp8WeightView& w) {
  // B[n, k] = W[n, k] as stored; the reduction runs over W's rows: scale(nb, k) = s[nb, k/128].
  return Fp8Rhs{.q = w.q, .s = w.s, .K = w.N, .N = w.K, .n_group = kFp8Group,
                .s_stride_k = fp8_groups(w.K), .s_stride_n = 1};
}

Fp8Rhs col_tiles_rhs(const uint8_t* q, const float* s, int64_t T, int64_t K) {
  return Fp8Rhs{.q = q, .s = s, .K = T, .N = K, .n_group = 1, .s_stride_k = K, .s_stride_n = 1};
}

namespace {

void check_shapes(const Fp8Lhs& a, const Fp8Rhs& b) {
  DSV3_CHECK(a.K == b.K, "FP8 GEMM reduction mismatch: A is ({}, {}), B is ({}, {})", a.M, a.K, b.K, b.N);
  DSV3_CHECK(b.n_group == kFp8Group || b.n_group == 1, "B scale group {} must be 128 or 1", b.n_group);
}

// ---- AVX2 fast path.
// Blocking: the output is cut into 96x128 tiles, one task each. A task keeps its f32
// accumulators (48 KB) and, per 128-chunk of K, that chunk of B converted to f32 (128x128, 64 KB)
// and of A (96x128, 48 KB): every converted element then feeds 96 (B) or 128 (A) FMAs, which keeps
// the conversions under ~10% of the time. The 6x16 micro-tile holds 12 partial-sum registers
// (2 FMA ports x 4-cycle latency = 8 needed in flight) plus 2 of B and 1 broadcast of A.
constexpr int64_t kNB = 128;
constexpr int64_t kMB = 96;
constexpr int kMR = 6;
constexpr int64_t kNR = 16;

// E4M3 codes placed as fp16 bits (sign to bit 15, the other 7 bits shifted left by 7) ARE the E4M3
// value times 2^-8, normals and subnormals alike (style.md §3.4), so vcvtph2ps decodes 8 codes at
// once. The 2^8 is folded into B's scales. The two NaN codes would read as +-480: patched to NaN.
__attribute__((target("avx2,fma,f16c"))) inline __m256 e4m3x8_to_f32_times_2m8(const uint8_t* p) {
  const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  const __m128i mag = _mm_and_si128(w, _mm_set1_epi16(0x7F));
  const __m128i sign = _mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(0x80)), 8);
  const __m256 f = _mm256_cvtph_ps(_mm_or_si128(sign, _mm_slli_epi16(mag, 7)));
  const __m128i nan16 = _mm_cmpeq_epi16(mag, _mm_set1_epi16(0x7F));
  const __m256 nan_mask = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(nan16));
  return _mm256_blendv_ps(f, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), nan_mask);
}

// panel[kk][j] = B[k0 + kk, n0 + j] * 2^-8 for j < nn, zero up to kNB.
__attribute__((target("avx2,fma,f16c"))) void convert_b_panel(float* panel, const uint8_t* q, int64_t ldq,
                                                              int64_t kc, int64_t nn) {
  for (int64_t kk = 0; kk < kc; ++kk) {
    const uint8_t* row = q + kk * ldq;
    float* out = panel + kk * kNB;
    int64_t j = 0;
    for (; j + 8 <= nn; j += 8) _mm256_store_ps(out + j, e4m3x8_to_f32_times_2m8(row + j));
    if (j < nn) {
      uint8_t tail[8] = {};
      std::copy(row + j, row + nn, tail);
      _mm256_store_ps(out + j, e4m3x8_to_f32_times_2m8(tail));
      j += 8;
    }
    for (; j < kNB; j += 8) _mm256_store_ps(out + j, _mm256_setzero_ps());
  }
}

// Scaled (FP8): acc[i][0:16] = fmaf(sa[i] * sb[0:16], Σ_kk a[i][kk] * b[kk][0:16], acc[i][0:16]),
// the in-chunk sum an FMA chain in ascending kk starting from 0 (bit-identical to the twin).
// Unscaled (BF16 operands): the chain simply continues from acc: acc = fmaf(a, b, acc) over kk.
template <int MR, bool kScaled>
__attribute__((target("avx2,fma,f16c"))) void micro_kernel(float* acc, const float* apanel, const float* bpanel,
                                                           int64_t kc, const float* sa, const float* sb) {
  __m256 p[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    p[i][0] = kScaled ? _mm256_setzero_ps() : _mm256_load_ps(acc + i * kNB);
    p[i][1] = kScaled ? _mm256_setzero_ps() : _mm256_load_ps(acc + i * kNB + 8);
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m256 b0 = _mm256_load_ps(bpanel + kk * kNB);
    const __m256 b1 = _mm256_load_ps(bpanel + kk * kNB + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(apanel + i * kFp8Group + kk);
      p[i][0] = _mm256_fmadd_ps(av, b0, p[i][0]);
      p[i][1] = _mm256_fmadd_ps(av, b1, p[i][1]);
    }
  }
  if constexpr (kScaled) {
    const __m256 sb0 = _mm256_load_ps(sb), sb1 = _mm256_load_ps(sb + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 s = _mm256_set1_ps(sa[i]);
      float* row = acc + i * kNB;
      _mm256_store_ps(row, _mm256_fmadd_ps(_mm256_mul_ps(s, sb0), p[i][0], _mm256_load_ps(row)));
      _mm256_store_ps(row + 8, _mm256_fmadd_ps(_mm256_mul_ps(s, sb1), p[i][1], _mm256_load_ps(row + 8)));
    }
  } else {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_store_ps(acc + i * kNB, p[i][0]);
      _mm256_store_ps(acc + i * kNB + 8, p[i][1]);
    }
  }
}

// The AVX-512 twin of micro_kernel<6, kScaled> on a 12 x 32 tile (two 6-row strips, two 16-column
// slices): every element is the same FMA chain and the same scaling, so the same bits. 24 ZMM
// accumulators + 2 of B + 1 broadcast of A. Only on the kAvx512 path.
template <bool kScaled>
__attribute__((target("avx512f,avx2,fma,f16c"))) void micro_kernel_12x32(float* acc, const float* apanel,
                                                                         const float* bpanel, int64_t kc,
                                                                         const float* sa, const float* sb) {
  constexpr int MR = 2 * kMR;
  __m512 p[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    p[i][0] = kScaled ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + i * kNB);
    p[i][1] = kScaled ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + i * kNB + 16);
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m512 b0 = _mm512_loadu_ps(bpanel + kk * kNB);
    const __m512 b1 = _mm512_loadu_ps(bpanel + kk * kNB + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(apanel[i * kFp8Group + kk]);
      p[i][0] = _mm512_fmadd_ps(av, b0, p[i][0]);
      p[i][1] = _mm512_fmadd_ps(av, b1, p[i][1]);
    }
  }
  if constexpr (kScaled) {
    const __m512 sb0 = _mm512_loadu_ps(sb), sb1 = _mm512_loadu_ps(sb + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 s = _mm512_set1_ps(sa[i]);
      float* row = acc + i * kNB;
      _mm512_storeu_ps(row, _mm512_fmadd_ps(_mm512_mul_ps(s, sb0), p[i][0], _mm512_loadu_ps(row)));
      _mm512_storeu_ps(row + 16, _mm512_fmadd_ps(_mm512_mul_ps(s, sb1), p[i][1], _mm512_loadu_ps(row + 16)));
    }
  } else {
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      _mm512_storeu_ps(acc + i * kNB, p[i][0]);
      _mm512_storeu_ps(acc + i * kNB + 16, p[i][1]);
    }
  }
}

using MicroKernel = void (*)(float*, const float*, const float*, int64_t, const float*, const float*);
template <bool kScaled>
constexpr MicroKernel kMicroKernels[kMR + 1] = {
    nullptr, micro_kernel<1, kScaled>, micro_kernel<2, kScaled>, micro_kernel<3, kScaled>,
    micro_kernel<4, kScaled>, micro_kernel<5, kScaled>, micro_kernel<6, kScaled>};

// The blocked driver shared by the FP8 and BF16 paths. `src` fills, for chunk kb (rows
// [128 kb, 128 kb + kc) of B, columns [128 kb, ...) of A):
//   b_panel(panel, kb, kc, n0, nn)      panel[kk][j], j < nn; zero up to kNB
//   a_panel(apanel, sa, kb, kc, m0, mb) apanel[i][kk]; sa[i] = A's scale (scaled only)
//   b_scales(sb, kb, n0, nn)            sb[j] (scaled only; zero beyond nn)
template <bool kScaled, typename Source>
__attribute__((target("avx2,fma,f16c"))) void blocked_gemm(float* C, int64_t ldc, int64_t M, int64_t N, int64_t K,
                                                           const Source& src, bool accumulate) {
  const int64_t nkb = fp8_groups(K);
  const int64_t n_mtiles = (M + kMB - 1) / kMB;
  const bool wide = kernel_path() == KernelPath::kAvx512;
  parallel_for(n_mtiles * ((N + kNB - 1) / kNB), [&](int64_t task) {
    alignas(32) float bpanel[kFp8Group * kNB];
    alignas(32) float apanel[kMB * kFp8Group];
    alignas(32) float acc[kMB * kNB];
    alignas(32) float sb[kNB];
    float sa[kMB];
    const int64_t n0 = (task / n_mtiles) * kNB, nn = std::min(kNB, N - n0);
    const int64_t nn_pad = (nn + kNR - 1) / kNR * kNR;
    {
      const int64_t m0 = (task % n_mtiles) * kMB;
      const int64_t mb = std::min(kMB, M - m0);
      std::fill(acc, acc + kMB * kNB, 0.0f);
      for (int64_t kb = 0; kb < nkb; ++kb) {
        const int64_t kc = std::min(kFp8Group, K - kb * kFp8Group);
        src.b_panel(bpanel, kb, kc, n0, nn);
        src.a_panel(apanel, sa, kb, kc, m0, mb);
        if constexpr (kScaled) src.b_scales(sb, kb, n0, nn);
        // A 16-column slice of B (8 KB) stays in L1; with AVX-512, 32-column slices and 12 x 32
        // tiles where whole (the rest in 6 x 16 tiles, the same sums either way).
        for (int64_t j0 = 0; j0 < nn_pad;) {
          const int64_t jw = wide && j0 + 2 * kNR <= nn_pad ? 2 * kNR : kNR;
          for (int64_t i0 = 0; i0 < mb;) {
            if (jw == 2 * kNR && i0 + 2 * kMR <= mb) {
              micro_kernel_12x32<kScaled>(acc + i0 * kNB + j0, apanel + i0 * kFp8Group, bpanel + j0, kc, sa + i0,
                                          sb + j0);
              i0 += 2 * kMR;
              continue;
            }
            const int mr = int(std::min<int64_t>(kMR, mb - i0));
            for (int64_t j = j0; j < j0 + jw; j += kNR)
              kMicroKernels<kScaled>[mr](acc + i0 * kNB + j, apanel + i0 * kFp8Group, bpanel + j, kc, sa + i0,
                                          sb + j);
            i0 += kMR;
          }
          j0 += jw;
        }
      }
      // The branch outside the loops lets them vectorize (inside, the loop stayed scalar).
      for (int64_t i = 0; i < mb; ++i) {
        float* crow = C + (m0 + i) * ldc + n0;
        const float* arow = acc + i * kNB;
        if (accumulate) {
          for (int64_t j = 0; j < nn; ++j) crow[j] += arow[j];
        } else {
          std::copy(arow, arow + nn, crow);
        }
      }
    }
  });
}

struct Fp8Source {
  const Fp8Lhs& a;
  const Fp8Rhs& b;
  const float* lut = e4m3_value_table();

  __attribute__((target("avx2,fma,f16c"))) void b_panel(float* panel, int64_t kb, int64_t kc, int64_t n0,
                                                        int64_t nn) const {
    convert_b_panel(panel, b.q + kb * kFp8Group * b.N + n0, b.N, kc, nn);
  }
  // A's codes decoded 8 at a time (the value times 2^-8, times 2^8 again: both exact, so the
  // panel holds the E4M3 values themselves, NaN codes included); the last kc % 8 through the table.
  __attribute__((target("avx2,fma,f16c"))) void a_panel(float* apanel, float* sa, int64_t kb, int64_t kc,
                                                        int64_t m0, int64_t mb) const {
    const int64_t nkb = fp8_groups(a.K);
    const __m256 two8 = _mm256_set1_ps(256.0f);
    for (int64_t i = 0; i < mb; ++i) {
      const uint8_t* row = a.q + (m0 + i) * a.K + kb * kFp8Group;
      float* out = apanel + i * kFp8Group;
      int64_t kk = 0;
      for (; kk + 8 <= kc; kk += 8) _mm256_storeu_ps(out + kk, _mm256_mul_ps(e4m3x8_to_f32_times_2m8(row + kk), two8));
      for (; kk < kc; ++kk) out[kk] = lut[row[kk]];
      sa[i] = a.s[(m0 + i) * nkb + kb];
    }
  }
  void b_scales(float* sb, int64_t kb, int64_t n0, int64_t nn) const {
    // x 2^8: the panel holds B * 2^-8 (see e4m3x8_to_f32_times_2m8); exact, so the product
    // sa * sb * p is the same real number and the fma rounds it the same way.
    for (int64_t j = 0; j < kNB; ++j) sb[j] = j < nn ? b.scale(kb, n0 + j) * 256.0f : 0.0f;
  }
};

struct F32Source {
  const float* A;  // (M, K)
  const float* B;  // (K, N)
  int64_t K, N;

  void b_panel(float* panel, int64_t kb, int64_t kc, int64_t n0, int64_t nn) const {
    for (int64_t kk = 0; kk < kc; ++kk) {
      const float* row = B + (kb * kFp8Group + kk) * N + n0;
      std::copy(row, row + nn, panel + kk * kNB);
      std::fill(panel + kk * kNB + nn, panel + (kk + 1) * kNB, 0.0f);
    }
  }
  void a_panel(float* apanel, float*, int64_t kb, int64_t kc, int64_t m0, int64_t mb) const {
    for (int64_t i = 0; i < mb; ++i) {
      const float* row = A + (m0 + i) * K + kb * kFp8Group;
      std::copy(row, row + kc, apanel + i * kFp8Group);
    }
  }
};

// |v| rounded to `bits` significant bits (toward zero, or to nearest-even), sign kept.
double round_significant(double v, int bits, AccRounding mode) {
  if (v == 0.0 || !std::isfinite(v)) return v;
  const double ulp = std::ldexp(1.0, std::ilogb(v) - bits + 1);
  const double m = v / ulp;  // exact: division by a power of two
  return (mode == AccRounding::kTruncate ? std::trunc(m) : std::nearbyint(m)) * ulp;
}

}  // namespace

// The kernels' one dispatch decision (CPU support, DSV3_KERNELS=portable, set_kernel_path).
bool fp8_gemm_fast_available() { return avx2_kernels(); }

void fp8_gemm_ref(float* C, int64_t ldc, const Fp8Lhs& a, const Fp8Rhs& b, bool accumulate) {
  check_shapes(a, b);
  const float* lut = e4m3_value_table();
  const int64_t N = b.N, K = a.K, nkb = fp8_groups(K);
  parallel_for(a.M, [&](int64_t m) {
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t kb = 0; kb < nkb; ++kb) {
        float p = 0.0f;
        for (int64_t k = kb * kFp8Group; k < std::min(K, (kb + 1) * kFp8Group); ++k) {
          p = std::fma(lut[a.q[m * K + k]], lut[b.q[k * N + n]], p);
        }
        const float scale = a.s[m * nkb + kb] * b.scale(kb, n);
        acc = std::fma(scale, p, acc);
      }
      float& c = C[m * ldc + n];
      c = accumulate ? c + acc : acc;
    }
  });
}

void fp8_gemm(float* C, int64_t ldc, const Fp8Lhs& a, const Fp8Rhs& b, bool accumulate) {
  check_shapes(a, b);
  if (fp8_gemm_fast_available()) {
    blocked_gemm<true>(C, ldc, a.M, b.N, a.K, Fp8Source{a, b}, accumulate);
  } else {
    fp8_gemm_ref(C, ldc, a, b, accumulate);
  }
}

void fp8_fprop(float* y, const Fp8Lhs& x, const Fp8WeightView& w) {
  DSV3_CHECK(w.qt != nullptr, "Fprop reads the transposed weight codes (Fp8WeightView::qt)");
  fp8_gemm(y, w.N, x, fprop_rhs(w), false);
}

void fp8_dgrad(float* dx, const Fp8Lhs& dy, const Fp8WeightView& w) { fp8_gemm(dx, w.K, dy, dgrad_rhs(w), false); }

void fp8_wgrad(float* dw, const Fp8Lhs& dyt, const Fp8Rhs& x) {
  DSV3_CHECK(x.n_group == 1, "Wgrad's x operand must be in 128x1 tiles");
  fp8_gemm(dw, x.N, dyt, x, true);
}

void bf16_gemm_ref(float* C, int64_t ldc, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
                   bool accumulate) {
  parallel_for(M, [&](int64_t m) {
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(A[m * K + k], B[k * N + n], acc);
      float& c = C[m * ldc + n];
      c = accumulate ? c + acc : acc;
    }
  });
}

void bf16_gemm(float* C, int64_t ldc, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
               bool accumulate) {
  if (fp8_gemm_fast_available()) {
    blocked_gemm<false>(C, ldc, M, N, K, F32Source{A, B, K, N}, accumulate);
  } else {
    bf16_gemm_ref(C, ldc, A, B, M, N, K, accumulate);
  }
}

void fp8_gemm_f64(double* C, const Fp8Lhs& a, const Fp8Rhs& b) {
  check_shapes(a, b);
  const float* lut = e4m3_value_table();
  const int64_t N = b.N, K = a.K, nkb = fp8_groups(K);
  parallel_for(a.M, [&](int64_t m) {
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t kb = k / kFp8Group;
        acc += double(lut[a.q[m * K + k]]) * double(a.s[m * nkb + kb]) * double(lut[b.q[k * N + n]]) *
               double(b.scale(kb, n));
      }
      C[m * N + n] = acc;
    }
  });
}

void fp8_gemm_emulated(float* C, const Fp8Lhs& a, const Fp8Rhs& b, const LimitedAccum& spec) {
  check_shapes(a, b);
  DSV3_CHECK(spec.mantissa_bits >= 2 && spec.mantissa_bits <= 24, "mantissa_bits {} outside [2, 24]",
             spec.mantissa_bits);
  DSV3_CHECK(spec.group > 0 && kFp8Group % spec.group == 0, "group {} must divide 128", spec.group);
  const float* lut = e4m3_value_table();
  const int64_t N = b.N, K = a.K, nkb = fp8_groups(K);
  parallel_for(a.M, [&](int64_t m) {
    double prod[kFp8Group];
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0.0;  // the limited accumulator: always holds <= mantissa_bits significant bits
      float acc32 = 0.0f;
      for (int64_t k0 = 0; k0 < K; k0 += spec.group) {
        const int64_t k1 = std::min(K, k0 + spec.group), kb = k0 / kFp8Group;
        // Products in double: exact for codes (4x4 significant bits, promoted path); with the f32
        // scales folded in (unpromoted path) one rounding at 2^-53, far below the 2^-14 modelled.
        int emax = spec.align_with_accumulator && acc != 0.0 ? std::ilogb(acc) : INT32_MIN;
        for (int64_t k = k0; k < k1; ++k) {
          double p = double(lut[a.q[m * K + k]]) * double(lut[b.q[k * N + n]]);
          if (!spec.promote) p *= double(a.s[m * nkb + kb]) * double(b.scale(kb, n));
          prod[k - k0] = p;
          if (p != 0.0 && std::isfinite(p)) emax = std::max(emax, std::ilogb(p));
        }
        double sum = 0.0;
        if (emax != INT32_MIN) {
          // Align to the largest exponent and keep mantissa_bits bits: a multiple of `ulp`.
          const double ulp = std::ldexp(1.0, emax - spec.mantissa_bits + 1);
          for (int64_t k = k0; k < k1; ++k) {
            const double t = prod[k - k0] / ulp;
            sum += (spec.rounding == AccRounding::kTruncate ? std::trunc(t) : std::nearbyint(t)) * ulp;
          }
        } else {
          for (int64_t k = k0; k < k1; ++k) sum += prod[k - k0];  // zeros, or NaN/inf to propagate
        }
        acc = round_significant(acc + sum, spec.mantissa_bits, spec.rounding);
        const bool chunk_end = k1 == K || k1 % kFp8Group == 0;
        if (spec.promote && chunk_end) {
          acc32 = std::fma(a.s[m * nkb + kb] * b.scale(kb, n), float(acc), acc32);
          acc = 0.0;
        }
      }
      C[m * N + n] = spec.promote ? acc32 : float(acc);
    }
  });
}

}  // namespace dsv3::kernels
