// FP8 GEMM with fine-grained scales and promotion every N_C = 128 K-elements, as DeepSeek-V3
// trains (spec training §3.3, §3.5; DeepGEMM's contract in §7.1), plus an emulation of the tensor
// cores' limited-precision accumulation (§3.6) to reproduce the report's promotion study.
//
// Every GEMM here is C[M, N] = A · B with the reduction dimension K:
//   A (M, K): E4M3 codes, row-major; one f32 scale per 1x128 tile along K: sA (M, ceil(K/128)).
//   B (K, N): E4M3 codes, row-major (K rows); one f32 scale per (128-row chunk kb, column group):
//             either 128x128 blocks (column group = n / 128) or 128x1 tiles (column group = n).
//
// The arithmetic, defined exactly (the fast path and its twin produce the same bits):
//   for each (m, n):  acc = 0.0f
//     for each 128-chunk kb of K:                      (N_C = 128, the promotion interval)
//       p = 0.0f;  for k in kb, ascending:  p = fmaf(A[m,k], B[k,n], p)   (E4M3 values; products exact)
//       acc = fmaf(sA[m,kb] * sB[kb,n], p, acc)        (scales applied once per chunk, in f32)
//     C[m,n] = acc, or C[m,n] + acc when accumulating (Wgrad: D = C + A·B)
// This is "ideal promotion": the in-chunk sum is f32 (the hardware's limited accumulator is
// modelled separately by fp8_gemm_emulated).
//
// The three GEMMs of a Linear y = x·Wᵀ (x (T, K), W (N, K)) map onto this form as:
//   Fprop  y[T,N]  = x · Wᵀ    A = x, 1x128 along K       B = Wᵀ: W's blocks, codes transposed, grid read transposed
//   Dgrad  dx[T,K] = dy · W    A = dy, 1x128 along N      B = W: the same codes and block scales, as stored
//   Wgrad  dW[N,K] += dyᵀ · x  A = dyᵀ, dy's 128x1 tiles along T, stored transposed (N, T)
//                              B = x, 128x1 tiles along T (T, K)
// No requantization anywhere in these GEMMs: W is quantized once (128x128) and used by both Fprop
// and Dgrad; transposing codes is exact.
//
// Threads: the output is split into tiles (parallel_for); each element is computed by one
// thread in the order above, so results are identical for any thread count.
#pragma once

#include <cstdint>

#include "kernels/fp8_quant.h"

namespace dsv3::kernels {

// Left operand A (M, K): row tiles along K. q (M, K) contiguous; s (M, fp8_groups(K)).
struct Fp8Lhs {
  const uint8_t* q = nullptr;
  const float* s = nullptr;
  int64_t M = 0, K = 0;
};

// Right operand B (K, N): q (K, N) contiguous. The scale of chunk kb and column n is
// s[kb * s_stride_k + (n / n_group) * s_stride_n], n_group = 128 (blocks) or 1 (128x1 tiles).
struct Fp8Rhs {
  const uint8_t* q = nullptr;
  const float* s = nullptr;
  int64_t K = 0, N = 0;
  int64_t n_group = kFp8Group;
  int64_t s_stride_k = 0, s_stride_n = 0;

  float scale(int64_t kb, int64_t n) const { return s[kb * s_stride_k + (n / n_group) * s_stride_n]; }
};

// A weight W (N, K) quantized in 128x128 blocks (quantize_128x128): q (N, K), s (ceil(N/128),
// ceil(K/128)), and qt (K, N) = transpose_codes(q), which Fprop reads.
struct Fp8WeightView {
  const uint8_t* q = nullptr;
  const uint8_t* qt = nullptr;
  const float* s = nullptr;
  int64_t N = 0, K = 0;
};

// The operands of the three training GEMMs (see the table above).
Fp8Rhs fprop_rhs(const Fp8WeightView& w);  // B = Wᵀ (K, N)
Fp8Rhs dgrad_rhs(const Fp8WeightView& w);  // B = W  (N, K), reduction over N
// B = x (T, K) in 128x1 tiles (quantize_128x1 or requantize_1x128_to_128x1): s (ceil(T/128), K).
Fp8Rhs col_tiles_rhs(const uint8_t* q, const float* s, int64_t T, int64_t K);

// C (A.M, B.N), row stride ldc. Overwrites C, or adds into it when `accumulate`.
void fp8_gemm(float* C, int64_t ldc, const Fp8Lhs& a, const Fp8Rhs& b, bool accumulate);
// The slow twin: the arithmetic above written as plain loops. Bit-identical to fp8_gemm.
void fp8_gemm_ref(float* C, int64_t ldc, const Fp8Lhs& a, const Fp8Rhs& b, bool accumulate);
// Whether fp8_gemm runs its AVX2/FMA/F16C path: the CPU has it and DSV3_KERNELS / set_kernel_path
// do not force the portable path (otherwise it runs the twin).
bool fp8_gemm_fast_available();

// The training GEMMs with their tilings spelled out (contiguous outputs).
//   y (T, N) = x · Wᵀ,   x: 1x128 tiles of (T, K)
void fp8_fprop(float* y, const Fp8Lhs& x, const Fp8WeightView& w);
//   dx (T, K) = dy · W,  dy: 1x128 tiles of (T, N)
void fp8_dgrad(float* dx, const Fp8Lhs& dy, const Fp8WeightView& w);
//   dw (N, K) += dyᵀ · x, dyt: dy's 128x1 tiles stored transposed, (N, T) (quantize_128x1_transposed);
//                         x: 128x1 tiles of (T, K) (col_tiles_rhs)
void fp8_wgrad(float* dw, const Fp8Lhs& dyt, const Fp8Rhs& x);

// The BF16 baseline of the same GEMMs: C (A is (M, K), B is (K, N), both contiguous f32 arrays
// whose values the caller has rounded to BF16) = Σ_k A[m,k]·B[k,n] as one f32 FMA chain over
// ascending k, overwriting C or adding into it. Products of BF16 values are exact in f32, so this
// is what a BF16 tensor-core GEMM with f32 accumulation computes, up to summation order.
void bf16_gemm(float* C, int64_t ldc, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
               bool accumulate);
void bf16_gemm_ref(float* C, int64_t ldc, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
                   bool accumulate);  // bit-identical twin

// FP64 reference on the SAME quantized operands: C = Σ_k (A[m,k]·sA)·(B[k,n]·sB) in double.
void fp8_gemm_f64(double* C, const Fp8Lhs& a, const Fp8Rhs& b);

// ---- Limited-precision accumulation (spec training §3.6), for studies and tests; scalar, slow.
//
// Hopper's FP8 MMA, as V3 §3.5.2 describes it: the products of one K = 32 step are aligned to
// the largest exponent among them, only the top `mantissa_bits` bits of each aligned product are
// kept (the rest TRUNCATED), and the sum goes into an accumulator of `mantissa_bits` significant
// bits (the "FP22" register: 1 sign, 8 exponent, 13 fraction bits, i.e. 14 significant bits).
// Truncation (round toward zero) is the default because that is what the report describes;
// kNearestEven is there to show how much of the error is the bias of truncation.
//   promote = true : the limited accumulator covers one 128-chunk, then acc32 = fmaf(sA·sB, acc,
//                    acc32) and it restarts from zero (DeepSeek's fix, N_C = 128).
//   promote = false: one limited accumulator over all of K. The scales cannot be applied later,
//                    so the products fed to it are the dequantized ones, (A·sA)·(B·sB).
// Whether the running accumulator joins the exponent alignment of each group is not published
// (spec §3.6): `align_with_accumulator` chooses.
enum class AccRounding : uint8_t { kTruncate, kNearestEven };
struct LimitedAccum {
  int mantissa_bits = 14;  // significant bits, leading one included
  int group = 32;          // products aligned together (one WGMMA K-step)
  bool promote = true;
  bool align_with_accumulator = false;
  AccRounding rounding = AccRounding::kTruncate;
};
// C (M, N) contiguous, overwritten.
void fp8_gemm_emulated(float* C, const Fp8Lhs& a, const Fp8Rhs& b, const LimitedAccum& acc);

}  // namespace dsv3::kernels
