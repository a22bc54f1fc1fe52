// The three products of a linear layer. f32: GEMMs of kernels/gemm.h, which split outputs across
// threads and sum every element over k in a fixed order, so the weight gradient's sum over tokens
// does not depend on the thread count. bf16/fp8: the recipes of kernels/fp8_linear.h (same
// property), with the weight prepared per call from the f32 master copy.
#include "train/linear.h"

#include <algorithm>

#include "core/numeric.h"
#include "core/parallel_for.h"
#include "kernels/fp8_linear.h"
#include "kernels/gemm.h"

namespace dsv3 {
namespace {

using kernels::Op;

struct Workspace {
  kernels::LinearWeight weight;
  kernels::LinearSaved saved;
  kernels::LinearScratch scratch;
  std::vector<float> dx;

  int64_t bytes() const {
    auto b = [](const auto& v) { return int64_t(v.capacity() * sizeof(v[0])); };
    return b(weight.q) + b(weight.qt) + b(weight.s) + b(weight.w) + b(weight.wt) + b(saved.q) + b(saved.s) +
           b(saved.x16) + b(scratch.dy_q) + b(scratch.dyt_q) + b(scratch.x_q) + b(scratch.dy_s) + b(scratch.dyt_s) +
           b(scratch.x_s) + b(scratch.dy16) + b(scratch.dyt16) + b(dx);
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

void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t in, int64_t out,
                    Precision precision) {
  if (precision == Precision::kF32) {
    kernels::gemm(y, out, x, in, Op::N, w, in, Op::T, N, out, in, false);
    return;
  }
  if (N == 0) return;
  Workspace& ws = workspace();
  const kernels::LinearRecipe recipe = recipe_of(precision);
  kernels::linear_prepare_weight(ws.weight, w, out, in, recipe);
  kernels::linear_forward(y, ws.saved, x, N, ws.weight, recipe);
}

void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t in,
                     int64_t out, Precision precision) {
  if (N == 0) return;
  if (precision == Precision::kF32) {
    if (dx != nullptr) kernels::gemm(dx, in, dy, out, Op::N, w, in, Op::N, N, in, out, true);
    if (dw != nullptr) kernels::gemm(dw, in, dy, out, Op::T, x, in, Op::N, out, in, N, true);
    return;
  }
  Workspace& ws = workspace();
  const kernels::LinearRecipe recipe = recipe_of(precision);
  // The same operands forward used: W prepared from the unchanged master weight, x quantized
  // (fp8) or rounded (bf16) exactly as forward did.
  kernels::linear_prepare_weight(ws.weight, w, out, in, recipe);
  if (dw != nullptr) {
    if (precision == Precision::kFp8) {
      ws.saved.q.resize(std::max(ws.saved.q.size(), size_t(N * in)));
      ws.saved.s.resize(std::max(ws.saved.s.size(), size_t(N * kernels::fp8_groups(in))));
      kernels::quantize_1x128(ws.saved.q.data(), ws.saved.s.data(), x, N, in, in, recipe.scale_fmt);
    } else {
      ws.saved.x16.resize(std::max(ws.saved.x16.size(), size_t(N * in)));
      float* x16 = ws.saved.x16.data();
      parallel_chunks(N * in, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) x16[i] = round_to_bf16(x[i]);
      });
    }
  }
  ws.saved.T = N;  // without dW, backward reads only the shape
  ws.saved.K = in;
  float* dxt = nullptr;
  if (dx != nullptr) {
    if (int64_t(ws.dx.size()) < N * in) ws.dx.resize(size_t(N * in));
    dxt = ws.dx.data();
  }
  kernels::linear_backward(dxt, dw, dy, N, ws.saved, ws.weight, ws.scratch, recipe);
  if (dx != nullptr) {
    parallel_chunks(N * in, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dx[i] += dxt[i];
    });
  }
}

int64_t linear_workspace_bytes() { return workspace().bytes(); }

}  // namespace dsv3
