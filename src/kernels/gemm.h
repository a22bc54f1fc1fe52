// FP32 matrix product for training: C[M,N] = op(A)[M,K] · op(B)[K,N] (+ C if accumulate).
//
//   op_a == Op::N: A is (M, K) row-major with row stride lda;  Op::T: A is stored (K, M), lda.
//   op_b == Op::N: B is (K, N) row-major with row stride ldb;  Op::T: B is stored (N, K), ldb.
//   C is (M, N) with row stride ldc. Strides are in elements, >= the stored row length.
//
// For a linear layer y = x · Wᵀ (x: (T, in), W: (out, in)) the three products are
//   forward  y  = x · Wᵀ     gemm(y,  out, x,  in,  N, W, in, T, T, out, in,  false)
//   dgrad    dx = dy · W     gemm(dx, in,  dy, out, N, W, in, N, T, in,  out, true)
//   wgrad    dW = dyᵀ · x    gemm(dW, in,  dy, out, T, x, in, N, out, in, T, true)
//
// The fast path packs A and B panels and runs a 6x16 FMA micro-kernel (gemm_avx2.cpp), or 12x32
// AVX-512 tiles over the same panels with the same sums (gemm_avx512.cpp, kAvx512 path); threads
// split the output statically and every element of C is summed over k in the same order whatever
// the split, so results are identical for any thread count. C must not alias A or B.
// gemm_ref (double accumulation, single-threaded) is the specification.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

enum class Op : uint8_t { N, T };  // use the stored matrix as is, or its transpose

void gemm(float* c, int64_t ldc, const float* a, int64_t lda, Op op_a, const float* b, int64_t ldb,
          Op op_b, int64_t M, int64_t N, int64_t K, bool accumulate);

void gemm_ref(float* c, int64_t ldc, const float* a, int64_t lda, Op op_a, const float* b, int64_t ldb,
              Op op_b, int64_t M, int64_t N, int64_t K, bool accumulate);

}  // namespace dsv3::kernels
