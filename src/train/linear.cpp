// The three products of a linear layer. f32: GEMMs of kernels/gemm.h, which split outputs across
// threads and sum every element over k in a fixed order, so the weight gradient's sum over tokens
// does not depend on the thread count. bf16/fp8: the recipes of kernels/fp8_linear.h (same
// property), with the weight prepared per call from the f32 master copy, and the input cached in
// the format of its LinearInput.
#include "train/linear.h"

#include <algorithm>

#include "core/numeric.h"
#include "core/parallel_for.h"
#include "core/check.h"
#include "kernels/convert.h"
#include "kernels/fp8_linear.h"
#include "kernels/fp8_quant.h"
#include "kernels/gemm.h"

namespace dsv3 {
namespace {

using kernels::Op;

struct Workspace {
  kernels::LinearWeight weight;
  kernels::LinearSaved saved;
  kernels::LinearScratch scratch;
  std::vector<float> dx;
  std::vector<float> x32;       // x decoded from a BF16 or E5M6 cache
  std::vector<uint16_t> e5m6;   // the E5M6 round trip of an attention output kept in f32
  std::vector<float> e5m6_s;

  int64_t bytes() const {
    auto b = [](const auto& v) { return int64_t(v.capacity() * sizeof(v[0])); };
    return b(weight.q) + b(weight.qt) + b(weight.s) + b(weight.w) + b(weight.wt) + b(saved.q) + b(saved.s) +
           b(saved.x16) + b(scratch.dy_q) + b(scratch.dyt_q) + b(scratch.x_q) + b(scratch.dy_s) + b(scratch.dyt_s) +
           b(scratch.x_s) + b(scratch.dy16) + b(scratch.dyt16) + b(dx) + b(x32) + b(e5m6) + b(e5m6_s);
  }
};

// Training runs its layers one after another on one thread (threads work inside each GEMM), so
// one workspace per calling thread is never shared.
Workspace& workspace() {
  thread_local Workspace ws;
  return ws;
}

kernels::LinearRecipe recipe_of(Precision p) {
  kernels::LinearRecipe r;
  r.precision = p == Precision::kFp8 ? kernels::LinearPrecision::kFp8 : kernels::LinearPrecision::kBf16;
  return r;
}

template <typename T>
T* grow(std::vector<T>& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}

void check_format(const LinearInput& in, Precision p) {
  DSV3_CHECK(in.format == CacheFormat::kF32 || in.format == cache_format(p, in.attn_out),
             "a linear input cached as format {} cannot serve precision {}", int(in.format), precision_name(p));
}

// x (N, in) as backward's Wgrad operand: the cached tiles themselves, or x decoded / derived from
// f32 exactly as forward derived its operand.
kernels::LinearInputView backward_input(Workspace& ws, const LinearInput& in, int64_t N, int64_t K, Precision p,
                                        const kernels::LinearRecipe& recipe) {
  kernels::LinearInputView v{N, K};
  switch (in.format) {
    case CacheFormat::kF32: {
      const auto* x = static_cast<const float*>(in.data);
      if (p == Precision::kBf16) {
        float* x16 = grow(ws.saved.x16, N * K);
        parallel_chunks(N * K, [&](int64_t b, int64_t e) { kernels::round_f32_to_bf16(x16 + b, x + b, e - b); });
        v.x = x16;
      } else if (in.attn_out) {
        uint16_t* q = grow(ws.e5m6, N * K);
        float* s = grow(ws.e5m6_s, N * kernels::fp8_groups(K));
        kernels::quantize_e5m6_1x128(q, s, x, N, K, K);
        kernels::dequantize_e5m6_1x128(grow(ws.x32, N * K), q, s, N, K);
        v.x = ws.x32.data();
      } else {
        kernels::quantize_1x128(grow(ws.saved.q, N * K), grow(ws.saved.s, N * kernels::fp8_groups(K)), x, N, K, K,
                                recipe.scale_fmt);
        v.q = ws.saved.q.data();
        v.s = ws.saved.s.data();
      }
      break;
    }
    case CacheFormat::kE4m3:
      v.q = static_cast<const uint8_t*>(in.data);
      v.s = in.scales;
      break;
    case CacheFormat::kBf16:
    case CacheFormat::kE5m6:
      cache_load(grow(ws.x32, N * K), in, N, K);
      v.x = ws.x32.data();
      break;
  }
  return v;
}

}  // namespace

Result<Precision> parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kF32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp8") return Precision::kFp8;
  return Status::error("unknown precision '" + name + "' (expected fp32, bf16 or fp8)");
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::kF32: return "fp32";
    case Precision::kBf16: return "bf16";
    case Precision::kFp8: return "fp8";
  }
  return "?";
}

CacheFormat cache_format(Precision p, bool attn_out) {
  switch (p) {
    case Precision::kF32: return CacheFormat::kF32;
    case Precision::kBf16: return CacheFormat::kBf16;
    case Precision::kFp8: return attn_out ? CacheFormat::kE5m6 : CacheFormat::kE4m3;
  }
  return CacheFormat::kF32;
}

int64_t cache_data_bytes(CacheFormat f, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  switch (f) {
    case CacheFormat::kF32: return 4 * n;
    case CacheFormat::kBf16: return 2 * n;
    case CacheFormat::kE4m3: return n;
    case CacheFormat::kE5m6: return 2 * n;
  }
  return 0;
}

int64_t cache_scale_bytes(CacheFormat f, int64_t rows, int64_t cols) {
  const bool tiled = f == CacheFormat::kE4m3 || f == CacheFormat::kE5m6;
  return tiled ? rows * kernels::fp8_groups(cols) * int64_t(sizeof(float)) : 0;
}

void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t in, int64_t out,
                    Precision precision) {
  linear_forward(y, f32_input(x), x, w, N, in, out, precision);
}

void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t in,
                     int64_t out, Precision precision) {
  linear_backward(dx, dw, dy, f32_input(x), w, N, in, out, precision);
}

void linear_forward(float* y, const LinearInput& saved, const float* x, const float* w, int64_t N, int64_t in,
                    int64_t out, Precision precision) {
  check_format(saved, precision);
  DSV3_CHECK(saved.format != CacheFormat::kF32 || saved.data == x, "a kF32 LinearInput must view x itself");
  if (precision == Precision::kF32) {
    kernels::gemm(y, out, x, in, Op::N, w, in, Op::T, N, out, in, false);
    return;
  }
  if (N == 0) return;
  Workspace& ws = workspace();
  const kernels::LinearRecipe recipe = recipe_of(precision);
  kernels::linear_prepare_weight(ws.weight, w, out, in, recipe);
  if (saved.format != CacheFormat::kF32) cache_store(saved, x, N, in, precision);
  if (saved.format == CacheFormat::kE4m3) {  // the cache is the Fprop operand: quantized once, straight into it
    kernels::linear_forward(y, kernels::LinearInputView{N, in, static_cast<const uint8_t*>(saved.data), saved.scales, nullptr},
                            ws.weight, recipe);
    return;
  }
  kernels::linear_forward(y, ws.saved, x, N, ws.weight, recipe);
}

void linear_backward(float* dx, float* dw, const float* dy, const LinearInput& saved, const float* w, int64_t N,
                     int64_t in, int64_t out, Precision precision) {
  check_format(saved, precision);
  if (N == 0) return;
  if (precision == Precision::kF32) {
    const auto* x = static_cast<const float*>(saved.data);
    if (dx != nullptr) kernels::gemm(dx, in, dy, out, Op::N, w, in, Op::N, N, in, out, true);
    if (dw != nullptr) kernels::gemm(dw, in, dy, out, Op::T, x, in, Op::N, out, in, N, true);
    return;
  }
  Workspace& ws = workspace();
  const kernels::LinearRecipe recipe = recipe_of(precision);
  // The same weight operand forward used: prepared again from the unchanged master weight.
  kernels::linear_prepare_weight(ws.weight, w, out, in, recipe);
  const kernels::LinearInputView xv =
      dw != nullptr ? backward_input(ws, saved, N, in, precision, recipe) : kernels::LinearInputView{N, in};
  float* dxt = nullptr;
  if (dx != nullptr) dxt = grow(ws.dx, N * in);
  kernels::linear_backward(dxt, dw, dy, xv, ws.weight, ws.scratch, recipe);
  if (dx != nullptr) {
    parallel_chunks(N * in, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dx[i] += dxt[i];
    });
  }
}

int64_t linear_workspace_bytes() { return workspace().bytes(); }

void cache_store(const LinearInput& saved, const float* x, int64_t rows, int64_t cols, Precision precision) {
  switch (saved.format) {
    case CacheFormat::kF32:
      DSV3_CHECK(saved.data == x, "an f32 cache views its tensor");
      return;
    case CacheFormat::kE4m3:
      kernels::quantize_1x128(static_cast<uint8_t*>(saved.data), saved.scales, x, rows, cols, cols,
                              recipe_of(precision).scale_fmt);
      return;
    case CacheFormat::kBf16: {
      auto* b16 = static_cast<uint16_t*>(saved.data);
      parallel_chunks(rows * cols, [&](int64_t b, int64_t e) { kernels::convert_f32_to_bf16(b16 + b, x + b, e - b); });
      return;
    }
    case CacheFormat::kE5m6:
      kernels::quantize_e5m6_1x128(static_cast<uint16_t*>(saved.data), saved.scales, x, rows, cols, cols);
      return;
  }
}

void cache_load(float* x, const LinearInput& saved, int64_t rows, int64_t cols) {
  switch (saved.format) {
    case CacheFormat::kF32:
      DSV3_CHECK(saved.data == x, "an f32 cache views its tensor");
      return;
    case CacheFormat::kE4m3:
      kernels::dequantize_1x128(x, static_cast<const uint8_t*>(saved.data), saved.scales, rows, cols);
      return;
    case CacheFormat::kBf16: {
      const auto* b16 = static_cast<const uint16_t*>(saved.data);
      parallel_chunks(rows * cols, [&](int64_t b, int64_t e) { kernels::convert_bf16_to_f32(x + b, b16 + b, e - b); });
      return;
    }
    case CacheFormat::kE5m6:
      kernels::dequantize_e5m6_1x128(x, static_cast<const uint16_t*>(saved.data), saved.scales, rows, cols);
      return;
  }
}

}  // namespace dsv3
