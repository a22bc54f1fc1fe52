// FP8 quantizers: the rule of fp8_quant.h applied per tiling. The scale is computed in scalar code;
// the elements are scaled into a small f32 buffer (the same single f32 multiply x * (1/s)) and cast
// by convert_f32_to_e4m3 (kernels/convert.h), which is bit-identical to core/numeric.h's
// f32_to_e4m3 (the spec) on every path, NaN and saturation included (tests/kernels/convert_test.cpp).
#include "kernels/fp8_quant.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "core/check.h"
#include "core/numeric.h"
#include "core/parallel_for.h"
#include "kernels/convert.h"

namespace dsv3::kernels {
namespace {

// 2^ceil(log2 s) for a positive finite s, exactly: keep s if it is already a power of two,
// otherwise the next power of two (DeepGEMM's ceil_to_ue8m0 on the f32 bits).
float pow2_ceil(float s) {
  uint32_t u = std::bit_cast<uint32_t>(s);
  uint32_t e = (u >> 23) & 0xFF;
  if ((u & 0x7FFFFFu) != 0 || e == 0) {  // not a normal power of two: round the exponent up
    return std::ldexp(1.0f, std::ilogb(s) + 1);
  }
  return s;
}

constexpr int64_t kQuantChunk = 64;  // columns per pass: 128 rows x 64 f32 = 32 KB stays in cache
static_assert(kFp8Group % kQuantChunk == 0);

// Per-thread (kQuantChunk, 128) byte tile of quantize_128x1_transposed.
uint8_t* transpose_tile() {
  thread_local uint8_t tile[kQuantChunk * kFp8Group];
  return tile;
}

// 128x1 groups from any row source: load_row(r, c0, n, buf) returns elements (r, c0 .. c0 + n)
// as f32, from the source itself or written to buf. Codes go out a row segment at a time,
// put_row(r, c0, codes, n), then flush(r0, r1, c0, n) once a row block's segment is done (a
// transposed destination writes whole columns there); the scale of group (rb, c) goes to
// put_scale(rb, c, s). Work is split over row blocks.
template <typename LoadRow, typename PutRow, typename Flush, typename PutScale>
void quantize_128x1_impl(int64_t rows, int64_t cols, ScaleFmt fmt, LoadRow load_row, PutRow put_row, Flush flush,
                         PutScale put_scale) {
  parallel_for(fp8_groups(rows), [&](int64_t rb) {
    const int64_t r0 = rb * kFp8Group, r1 = std::min(rows, r0 + kFp8Group);
    for (int64_t c0 = 0; c0 < cols; c0 += kQuantChunk) {
      const int64_t nc = std::min(kQuantChunk, cols - c0);
      float amax[kQuantChunk] = {};
      float inv[kQuantChunk];
      float vals[kQuantChunk];
      for (int64_t r = r0; r < r1; ++r) abs_max_into(amax, load_row(r, c0, nc, vals), nc);
      for (int64_t j = 0; j < nc; ++j) {
        float s = fp8_scale(amax[j], fmt);
        put_scale(rb, c0 + j, s);
        inv[j] = 1.0f / s;
      }
      uint8_t codes[kQuantChunk];
      float scaled[kQuantChunk];
      for (int64_t r = r0; r < r1; ++r) {
        const float* v = load_row(r, c0, nc, vals);
        for (int64_t j = 0; j < nc; ++j) scaled[j] = v[j] * inv[j];
        convert_f32_to_e4m3(codes, scaled, nc);
        put_row(r, c0, codes, nc);
      }
      flush(r0, r1, c0, nc);
    }
  });
}

// put_row / flush of a row-major (rows, cols) destination.
auto row_major_codes(uint8_t* q, int64_t cols) {
  return [=](int64_t r, int64_t c0, const uint8_t* codes, int64_t n) {
    std::copy(codes, codes + n, q + r * cols + c0);
  };
}
constexpr auto kNoFlush = [](int64_t, int64_t, int64_t, int64_t) {};

}  // namespace

const float* e4m3_value_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = e4m3_to_f32(uint8_t(i));
    return t;
  }();
  return table.data();
}

float fp8_scale(float amax, ScaleFmt fmt) {
  float s = std::max(amax, kFp8AmaxFloor) / kE4M3Max;
  return fmt == ScaleFmt::kUe8m0 ? pow2_ceil(s) : s;
}

uint8_t fp8_quantize_value(float x, float inv_scale) { return f32_to_e4m3(x * inv_scale); }

void quantize_1x128(uint8_t* q, float* s, const float* x, int64_t rows, int64_t cols, int64_t ldx,
                    ScaleFmt fmt) {
  const int64_t ng = fp8_groups(cols);
  parallel_for(rows, [&](int64_t r) {
    const float* xr = x + r * ldx;
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t c0 = g * kFp8Group, c1 = std::min(cols, c0 + kFp8Group);
      const float amax = abs_max(xr + c0, c1 - c0);
      const float sc = fp8_scale(amax, fmt);
      const float inv = 1.0f / sc;
      s[r * ng + g] = sc;
      float scaled[kFp8Group];
      for (int64_t c = c0; c < c1; ++c) scaled[c - c0] = xr[c] * inv;
      convert_f32_to_e4m3(q + r * cols + c0, scaled, c1 - c0);
    }
  });
}

void dequantize_1x128(float* x, const uint8_t* q, const float* s, int64_t rows, int64_t cols) {
  const float* t = e4m3_value_table();
  const int64_t ng = fp8_groups(cols);
  parallel_for(rows, [&](int64_t r) {
    for (int64_t c = 0; c < cols; ++c) x[r * cols + c] = t[q[r * cols + c]] * s[r * ng + c / kFp8Group];
  });
}

void quantize_128x128(uint8_t* q, float* s, const float* w, int64_t rows, int64_t cols, ScaleFmt fmt) {
  const int64_t ncb = fp8_groups(cols);
  parallel_for(fp8_groups(rows), [&](int64_t rb) {
    const int64_t r0 = rb * kFp8Group, r1 = std::min(rows, r0 + kFp8Group);
    for (int64_t cb = 0; cb < ncb; ++cb) {
      const int64_t c0 = cb * kFp8Group, c1 = std::min(cols, c0 + kFp8Group);
      float amax = 0.0f;  // the zero padding of a partial block could only lower amax: no-op
      for (int64_t r = r0; r < r1; ++r) amax = std::max(amax, abs_max(w + r * cols + c0, c1 - c0));
      const float sc = fp8_scale(amax, fmt);
      const float inv = 1.0f / sc;
      s[rb * ncb + cb] = sc;
      float scaled[kFp8Group];
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) scaled[c - c0] = w[r * cols + c] * inv;
        convert_f32_to_e4m3(q + r * cols + c0, scaled, c1 - c0);
      }
    }
  });
}

void dequantize_128x128(float* w, const uint8_t* q, const float* s, int64_t rows, int64_t cols) {
  const float* t = e4m3_value_table();
  const int64_t ncb = fp8_groups(cols);
  parallel_for(rows, [&](int64_t r) {
    const float* sr = s + (r / kFp8Group) * ncb;
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] = t[q[r * cols + c]] * sr[c / kFp8Group];
  });
}

void quantize_128x1(uint8_t* q, float* s, const float* x, int64_t rows, int64_t cols, int64_t ldx,
                    ScaleFmt fmt) {
  quantize_128x1_impl(
      rows, cols, fmt,
      [&](int64_t r, int64_t c0, int64_t, float*) { return x + r * ldx + c0; },
      row_major_codes(q, cols), kNoFlush, [&](int64_t rb, int64_t c, float sc) { s[rb * cols + c] = sc; });
}

void dequantize_128x1(float* x, const uint8_t* q, const float* s, int64_t rows, int64_t cols) {
  const float* t = e4m3_value_table();
  parallel_for(rows, [&](int64_t r) {
    const float* sr = s + (r / kFp8Group) * cols;
    for (int64_t c = 0; c < cols; ++c) x[r * cols + c] = t[q[r * cols + c]] * sr[c];
  });
}

void quantize_128x1_transposed(uint8_t* qt, float* st, const float* x, int64_t rows, int64_t cols,
                               int64_t ldx, ScaleFmt fmt) {
  const int64_t nrb = fp8_groups(rows);
  // Codes are gathered per row block in a (chunk, 128) tile and written out a column at a time:
  // storing each byte straight to qt[c * rows + r] scattered them `rows` bytes apart.
  quantize_128x1_impl(
      rows, cols, fmt,
      [&](int64_t r, int64_t c0, int64_t, float*) { return x + r * ldx + c0; },
      [&](int64_t r, int64_t, const uint8_t* codes, int64_t n) {
        uint8_t* tile = transpose_tile();
        for (int64_t j = 0; j < n; ++j) tile[j * kFp8Group + r % kFp8Group] = codes[j];
      },
      [&](int64_t r0, int64_t r1, int64_t c0, int64_t n) {
        const uint8_t* tile = transpose_tile();
        for (int64_t j = 0; j < n; ++j) {
          const uint8_t* column = tile + j * kFp8Group;
          std::copy(column, column + (r1 - r0), qt + (c0 + j) * rows + r0);
        }
      },
      [&](int64_t rb, int64_t c, float sc) { st[c * nrb + rb] = sc; });
}

void requantize_1x128_to_128x1(uint8_t* q_out, float* s_out, const uint8_t* q_in, const float* s_in,
                               int64_t rows, int64_t cols, ScaleFmt fmt) {
  DSV3_CHECK(q_out != q_in, "requantize_1x128_to_128x1 cannot work in place");
  const int64_t ng = fp8_groups(cols);
  // A segment never crosses a 1x128 group (kQuantChunk divides 128): one input scale per segment.
  quantize_128x1_impl(
      rows, cols, fmt,
      [&](int64_t r, int64_t c0, int64_t n, float* buf) {
        convert_e4m3_to_f32(buf, q_in + r * cols + c0, n);
        const float sc = s_in[r * ng + c0 / kFp8Group];
        for (int64_t j = 0; j < n; ++j) buf[j] *= sc;
        return static_cast<const float*>(buf);
      },
      row_major_codes(q_out, cols), kNoFlush, [&](int64_t rb, int64_t c, float sc) { s_out[rb * cols + c] = sc; });
}

void transpose_codes(uint8_t* out, const uint8_t* in, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;  // 32x32 bytes: both sides of the tile stay in L1
  parallel_for((cols + kTile - 1) / kTile, [&](int64_t cb) {
    const int64_t c0 = cb * kTile, c1 = std::min(cols, c0 + kTile);
    for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) out[c * rows + r] = in[r * cols + c];
    }
  });
}

uint16_t f32_to_e5m6(float x) {
  const uint16_t sign = std::signbit(x) ? 0x800 : 0;
  if (std::isnan(x)) return sign | 0x7FF;
  const float a = std::fmin(std::fabs(x), kE5M6Max);  // saturate (inf too)
  const float v = std::fmin(detail::round_to_grid(a, 6, -14), kE5M6Max);
  return uint16_t(sign | detail::grid_bits(v, 6, -14));
}

float e5m6_to_f32(uint16_t bits) {
  bits &= 0xFFF;
  if ((bits & 0x7C0) == 0x7C0) {  // exponent all ones: reserved (never produced but NaN)
    if (bits & 0x3F) return std::numeric_limits<float>::quiet_NaN();
    return (bits & 0x800) ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }
  return detail::decode_minifloat(bits, 5, 6, 15);
}

void quantize_e5m6_1x128(uint16_t* q, float* s, const float* x, int64_t rows, int64_t cols, int64_t ldx) {
  const int64_t ng = fp8_groups(cols);
  parallel_for(rows, [&](int64_t r) {
    const float* xr = x + r * ldx;
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t c0 = g * kFp8Group, c1 = std::min(cols, c0 + kFp8Group);
      const float amax = abs_max(xr + c0, c1 - c0);
      const float sc = pow2_ceil(std::max(amax, kFp8AmaxFloor) / kE5M6Max);
      const float inv = 1.0f / sc;  // exact: sc is a power of two
      s[r * ng + g] = sc;
      for (int64_t c = c0; c < c1; ++c) q[r * cols + c] = f32_to_e5m6(xr[c] * inv);
    }
  });
}

void dequantize_e5m6_1x128(float* x, const uint16_t* q, const float* s, int64_t rows, int64_t cols) {
  const int64_t ng = fp8_groups(cols);
  parallel_for(rows, [&](int64_t r) {
    for (int64_t c = 0; c < cols; ++c) x[r * cols + c] = e5m6_to_f32(q[r * cols + c]) * s[r * ng + c / kFp8Group];
  });
}

}  // namespace dsv3::kernels
