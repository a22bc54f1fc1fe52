// The FP8 and BF16 recipes of one Linear layer: quantize or round the operands, then the GEMMs of
// fp8_gemm.h. See fp8_linear.h for the contract.
#include "kernels/fp8_linear.h"

#include "core/check.h"
#include "core/numeric.h"
#include "core/parallel_for.h"
#include "kernels/convert.h"

namespace dsv3::kernels {
namespace {

template <typename T>
T* grow(std::vector<T>& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}

void round_bf16(float* out, const float* in, int64_t n) {
  parallel_chunks(n, [&](int64_t b, int64_t e) { round_f32_to_bf16(out + b, in + b, e - b); });
}

// out (cols, rows) = in (rows, cols)ᵀ, optionally rounded to BF16.
void transpose_f32(float* out, const float* in, int64_t rows, int64_t cols, bool to_bf16) {
  constexpr int64_t kTile = 32;
  parallel_for((cols + kTile - 1) / kTile, [&](int64_t cb) {
    const int64_t c0 = cb * kTile, c1 = std::min(cols, c0 + kTile);
    for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) out[c * rows + r] = in[r * cols + c];
        if (to_bf16) round_f32_to_bf16(out + c * rows + r0, out + c * rows + r0, r1 - r0);
      }
    }
  });
}

void maybe_round_output(float* y, int64_t n, const LinearRecipe& recipe) {
  if (recipe.bf16_outputs) round_bf16(y, y, n);
}

}  // namespace

void linear_prepare_weight(LinearWeight& wc, const float* W, int64_t N, int64_t K, const LinearRecipe& recipe) {
  wc.N = N;
  wc.K = K;
  if (recipe.precision == LinearPrecision::kFp8) {
    quantize_128x128(grow(wc.q, N * K), grow(wc.s, fp8_groups(N) * fp8_groups(K)), W, N, K, recipe.scale_fmt);
    transpose_codes(grow(wc.qt, N * K), wc.q.data(), N, K);
  } else {
    round_bf16(grow(wc.w, N * K), W, N * K);
    transpose_f32(grow(wc.wt, N * K), W, N, K, true);
  }
}

void linear_forward(float* y, LinearSaved& saved, const float* x, int64_t T, const LinearWeight& wc,
                    const LinearRecipe& recipe) {
  const int64_t K = wc.K;
  saved.T = T;
  saved.K = K;
  if (recipe.precision == LinearPrecision::kFp8) {
    quantize_1x128(grow(saved.q, T * K), grow(saved.s, T * fp8_groups(K)), x, T, K, K, recipe.scale_fmt);
  } else {
    round_bf16(grow(saved.x16, T * K), x, T * K);
  }
  linear_forward(y, saved.view(recipe.precision), wc, recipe);
}

void linear_forward(float* y, const LinearInputView& x, const LinearWeight& wc, const LinearRecipe& recipe) {
  const int64_t N = wc.N, K = wc.K, T = x.T;
  DSV3_CHECK(x.K == K, "linear_forward: input has {} columns, weight {}", x.K, K);
  if (recipe.precision == LinearPrecision::kFp8) {
    DSV3_CHECK(x.q != nullptr && x.s != nullptr, "linear_forward: fp8 needs the input's 1x128 tiles");
    fp8_fprop(y, Fp8Lhs{x.q, x.s, T, K}, wc.fp8_view());
  } else {
    bf16_gemm(y, N, x.x, wc.wt.data(), T, N, K, false);
  }
  maybe_round_output(y, T * N, recipe);
}

void linear_backward(float* dx, float* dw, const float* dy, int64_t T, const LinearSaved& saved,
                     const LinearWeight& wc, LinearScratch& scratch, const LinearRecipe& recipe) {
  DSV3_CHECK(saved.T == T, "linear_backward: saved input has {} rows, expected {}", saved.T, T);
  linear_backward(dx, dw, dy, saved.view(recipe.precision), wc, scratch, recipe);
}

void linear_backward(float* dx, float* dw, const float* dy, const LinearInputView& x, const LinearWeight& wc,
                     LinearScratch& scratch, const LinearRecipe& recipe) {
  const int64_t N = wc.N, K = wc.K, T = x.T;
  DSV3_CHECK(x.K == K, "linear_backward: saved input has {} columns, expected {}", x.K, K);
  if (recipe.precision == LinearPrecision::kFp8) {
    if (dx != nullptr) {
      quantize_1x128(grow(scratch.dy_q, T * N), grow(scratch.dy_s, T * fp8_groups(N)), dy, T, N, N,
                     recipe.scale_fmt);
      fp8_dgrad(dx, Fp8Lhs{scratch.dy_q.data(), scratch.dy_s.data(), T, N}, wc.fp8_view());
      maybe_round_output(dx, T * K, recipe);
    }
    if (dw != nullptr) {
      quantize_128x1_transposed(grow(scratch.dyt_q, N * T), grow(scratch.dyt_s, N * fp8_groups(T)), dy, T, N, N,
                                recipe.scale_fmt);
      uint8_t* xq = grow(scratch.x_q, T * K);
      float* xs = grow(scratch.x_s, fp8_groups(T) * K);
      if (x.q != nullptr) {
        requantize_1x128_to_128x1(xq, xs, x.q, x.s, T, K, recipe.scale_fmt);
      } else {
        quantize_128x1(xq, xs, x.x, T, K, K, recipe.scale_fmt);
      }
      fp8_wgrad(dw, Fp8Lhs{scratch.dyt_q.data(), scratch.dyt_s.data(), N, T}, col_tiles_rhs(xq, xs, T, K));
    }
  } else {
    if (dx != nullptr) {
      round_bf16(grow(scratch.dy16, T * N), dy, T * N);
      bf16_gemm(dx, K, scratch.dy16.data(), wc.w.data(), T, K, N, false);
      maybe_round_output(dx, T * K, recipe);
    }
    if (dw != nullptr) {
      transpose_f32(grow(scratch.dyt16, N * T), dy, T, N, true);
      bf16_gemm(dw, K, scratch.dyt16.data(), x.x, N, K, T, true);
    }
  }
}

}  // namespace dsv3::kernels
