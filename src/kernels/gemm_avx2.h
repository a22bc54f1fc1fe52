// The blocked FP32 product engine of the AVX2 path, shared by gemm (f32 operands) and the
// prefill regime of matmul (weights widened to f32 while packing). Internal to src/kernels.
//
// Blocking (BLIS order): for each NC-wide column block of C and each KC-deep slice of k, a packed
// B panel (KC x NC, ~1 MiB, per-thread L2) is filled once; for each MC-row block of C a packed A
// block (MC x KC, 144 KiB) is filled; then the 6x16 micro-kernel runs over every (6 x 16) tile
// with its B micro-panel (KC x 16 = 16 KiB) in L1; on the kAvx512 path, 12 x 32 blocks of four
// tiles go to the AVX-512 micro-kernel in one call. Every C element is the sum over the KC slices
// in k order of a register sum over one slice in k order, whatever tile or thread computes it.
#pragma once

#include <cstdint>

namespace dsv3::kernels::avx2 {

constexpr int64_t kMR = 6;     // micro-tile rows (of C): 6 x 2 accumulators + 2 B + 1 A = 15 ymm
constexpr int64_t kNR = 16;    // micro-tile columns: two 8-wide vectors
constexpr int64_t kKC = 256;   // k slice: B micro-panel 16 KiB, A micro-panel 6 KiB -> L1
constexpr int64_t kMC = 144;   // rows per packed A block (multiple of kMR)
constexpr int64_t kNC = 1024;  // columns per packed B panel (multiple of kNR)

// Writes rows [i0, i0 + ni) x k [k0, k0 + nk) of op(A) as ceil(ni / 6) panels, each nk x 6
// (k-major), rows beyond ni zero.
class APanelSource {
 public:
  virtual void pack(float* dst, int64_t i0, int64_t ni, int64_t k0, int64_t nk) const = 0;

 protected:
  ~APanelSource() = default;
};

// Writes k [k0, k0 + nk) x columns [j0, j0 + nj) of op(B) as ceil(nj / 16) panels, each nk x 16
// (k-major), columns beyond nj zero.
class BPanelSource {
 public:
  virtual void pack(float* dst, int64_t k0, int64_t nk, int64_t j0, int64_t nj) const = 0;

 protected:
  ~BPanelSource() = default;
};

// op(A) from a row-major f32 matrix (gemm's A, and the activations of matmul prefill).
class F32PanelsA final : public APanelSource {
 public:
  F32PanelsA(const float* a, int64_t lda, bool transposed) : a_(a), lda_(lda), transposed_(transposed) {}
  void pack(float* dst, int64_t i0, int64_t ni, int64_t k0, int64_t nk) const override;

 private:
  const float* a_;
  int64_t lda_;
  bool transposed_;  // op(A)[i, k] = a[k * lda + i] instead of a[i * lda + k]
};

// C[m_begin..m_end, n_begin..n_end) = op(A)·op(B) over k in [0, K) (+ C when accumulate), on the
// calling thread. Uses per-thread scratch that grows on first use.
void gemm_blocked(float* c, int64_t ldc, int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end,
                  int64_t K, const APanelSource& a, const BPanelSource& b, bool accumulate);

// One B micro-panel from 16 stored rows (row j at rows + j * ld, nk values each): dst[k * 16 + j] =
// rows[j * ld + k], written with 8x8 transposes. This is op(B) = Bᵀ, the forward x·Wᵀ of a Linear.
void pack_rows_as_b_panel(float* dst, const float* rows, int64_t ld, int64_t nk);

// A per-thread, 64-byte aligned float buffer for slot 0..3, grown on demand and kept.
float* thread_scratch(int slot, int64_t n);

}  // namespace dsv3::kernels::avx2

namespace dsv3::kernels::avx512 {

// The C tile (12 x 32) at c = [A micro-panels a0; a1] (kc x 6 each) · [B micro-panels b0, b1]
// (kc x 16 each, 64-byte aligned), plus C when `add`: bitwise the four 6 x 16 tiles of the AVX2
// micro-kernel. Only on the kAvx512 path (gemm_avx512.cpp).
void micro_kernel_12x32(int64_t kc, const float* a0, const float* a1, const float* b0, const float* b1, float* c,
                        int64_t ldc, bool add);

}  // namespace dsv3::kernels::avx512
