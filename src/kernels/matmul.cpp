// WeightMatrix views, the dispatch of the weight products (matmul.h), and their portable path.
//
// Portable path: each thread owns a contiguous range of output features (parallel_chunks over
// N). It dequantizes a group of 8 weight rows, 256 columns at a time, into a stack buffer and
// takes dot products with every token, so each weight is read once per call and nothing is
// allocated. Every output element is summed over k in the same order whatever the thread split.
#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/numeric.h"
#include "core/parallel_for.h"
#include "kernels/avx2.h"
#include "kernels/dequant.h"
#include "kernels/dispatch.h"
#include "kernels/dot8.h"
#include "kernels/matmul.h"

namespace dsv3::kernels {
namespace {

constexpr int64_t kSeg = 256;   // columns per dequantized segment (1 KiB of f32 per row)
constexpr int64_t kGroup = 8;   // weight rows per group

void check_weights(const WeightMatrix& w) {
  DSV3_CHECK(w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16 ||
                 w.dtype == DType::F8_E4M3,
             "weight dtype {} is not supported by matmul", dtype_name(w.dtype));
  DSV3_CHECK(w.rows >= 0 && w.cols >= 0, "bad weight shape ({}, {})", w.rows, w.cols);
  DSV3_CHECK(w.dtype != DType::F8_E4M3 || w.scale_inv != nullptr || w.rows * w.cols == 0,
             "F8_E4M3 weights need block scales");
}

void matmul_portable(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  const int64_t K = w.cols;
  parallel_chunks(w.rows, [&](int64_t n0, int64_t n1) {
    float buf[kGroup][kSeg];
    for (int64_t n = n0; n < n1; n += kGroup) {
      const int64_t g = std::min(kGroup, n1 - n);
      if (K == 0) {
        for (int64_t t = 0; t < T; ++t) std::fill_n(y + t * ldy + n, g, 0.0f);
      }
      for (int64_t c0 = 0; c0 < K; c0 += kSeg) {
        const int64_t len = std::min(kSeg, K - c0);
        for (int64_t j = 0; j < g; ++j) detail::dequantize_run(buf[j], w, n + j, c0, len);
        for (int64_t t = 0; t < T; ++t) {
          float* yt = y + t * ldy + n;
          const float* xt = x + t * ldx + c0;
          for (int64_t j = 0; j < g; ++j) {
            float s = dot8(buf[j], xt, len);
            yt[j] = c0 == 0 ? s : yt[j] + s;
          }
        }
      }
    }
  });
}

void matmul_t_portable(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  parallel_chunks(w.cols, [&](int64_t c_begin, int64_t c_end) {
    float buf[kSeg];
    for (int64_t c0 = c_begin; c0 < c_end; c0 += kSeg) {
      const int64_t len = std::min(kSeg, c_end - c0);
      for (int64_t t = 0; t < T; ++t) std::fill_n(y + t * ldy + c0, len, 0.0f);
      for (int64_t r = 0; r < w.rows; ++r) {
        detail::dequantize_run(buf, w, r, c0, len);
        for (int64_t t = 0; t < T; ++t) {
          const float xv = x[t * ldx + r];
          float* yt = y + t * ldy + c0;
          for (int64_t i = 0; i < len; ++i) yt[i] += xv * buf[i];
        }
      }
    }
  });
}

}  // namespace

namespace detail {

const float* e4m3_table() {
  static const auto table = [] {
    struct Table { float v[256]; } t;
    for (int i = 0; i < 256; ++i) t.v[i] = e4m3_to_f32(uint8_t(i));
    return t;
  }();
  return table.v;
}

void dequantize_run(float* out, const WeightMatrix& w, int64_t r, int64_t c0, int64_t n) {
  const int64_t off = r * w.cols + c0;
  switch (w.dtype) {
    case DType::F32:
      std::memcpy(out, static_cast<const float*>(w.data) + off, size_t(n) * sizeof(float));
      return;
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + off;
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(p[i]);
      return;
    }
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + off;
      for (int64_t i = 0; i < n; ++i) out[i] = f16_bits_to_f32(p[i]);
      return;
    }
    case DType::F8_E4M3: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + off;
      const float* table = e4m3_table();
      const float* srow = w.scale_inv + ((w.scale_row_offset + r) / kFp8Block) * w.scale_cols();
      for (int64_t i = 0; i < n;) {
        const int64_t c = c0 + i;
        const int64_t end = std::min(n, i + kFp8Block - c % kFp8Block);
        const float s = srow[c / kFp8Block];
        for (; i < end; ++i) out[i] = table[p[i]] * s;
      }
      return;
    }
    default: DSV3_FAIL("weight dtype {} is not supported by matmul", dtype_name(w.dtype));
  }
}

}  // namespace detail

int64_t WeightMatrix::bytes() const {
  int64_t b = rows * cols * int64_t(dtype_size(dtype));
  if (dtype == DType::F8_E4M3 && rows > 0) {
    const int64_t first = scale_row_offset / kFp8Block, last = (scale_row_offset + rows - 1) / kFp8Block;
    b += (last - first + 1) * scale_cols() * int64_t(sizeof(float));
  }
  return b;
}

WeightMatrix WeightMatrix::row_slice(int64_t r0, int64_t n) const {
  DSV3_CHECK(r0 >= 0 && n >= 0 && r0 + n <= rows, "row slice [{}, {}) of a matrix with {} rows", r0, r0 + n,
             rows);
  WeightMatrix v = *this;
  v.data = static_cast<const uint8_t*>(data) + r0 * cols * int64_t(dtype_size(dtype));
  v.rows = n;
  v.scale_row_offset = scale_row_offset + r0;
  return v;
}

float WeightMatrix::at(int64_t r, int64_t c) const {
  DSV3_CHECK(r >= 0 && r < rows && c >= 0 && c < cols, "element ({}, {}) of a ({}, {}) matrix", r, c, rows, cols);
  float v;
  detail::dequantize_run(&v, *this, r, c, 1);
  return v;
}

void matmul(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  check_weights(w);
  DSV3_CHECK(T >= 0 && ldx >= w.cols && ldy >= w.rows, "matmul: T={} ldx={} ldy={} for W ({}, {})", T, ldx,
             ldy, w.rows, w.cols);
  if (T == 0 || w.rows == 0) return;
  if (avx2_kernels()) return avx2::matmul(y, ldy, x, ldx, w, T);
  matmul_portable(y, ldy, x, ldx, w, T);
}

void matmul_t(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T) {
  check_weights(w);
  DSV3_CHECK(T >= 0 && ldx >= w.rows && ldy >= w.cols, "matmul_t: T={} ldx={} ldy={} for W ({}, {})", T, ldx,
             ldy, w.rows, w.cols);
  if (T == 0 || w.cols == 0) return;
  if (avx2_kernels()) return avx2::matmul_t(y, ldy, x, ldx, w, T);
  matmul_t_portable(y, ldy, x, ldx, w, T);
}

void dequantize_row(float* out, const WeightMatrix& w, int64_t r) {
  check_weights(w);
  DSV3_CHECK(r >= 0 && r < w.rows, "row {} of a matrix with {} rows", r, w.rows);
  if (avx2_kernels()) return avx2::dequantize_run(out, w, r, 0, w.cols);
  detail::dequantize_run(out, w, r, 0, w.cols);
}

}  // namespace dsv3::kernels
