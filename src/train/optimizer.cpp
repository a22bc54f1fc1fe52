#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/numeric.h"
#include "core/parallel_for.h"

namespace dsv3 {

namespace {
constexpr int64_t kNormBlock = 1 << 16;  // fixed partial-sum blocks: thread-count independent
// Below this many elements a tensor is updated by the calling thread: waking a thread team
// costs more than the update (element-wise, so the result is the same either way).
constexpr int64_t kMinParallel = 1 << 15;

template <typename F>
void elementwise_chunks(int64_t n, F&& f) {
  if (n < kMinParallel) {
    f(int64_t(0), n);
  } else {
    parallel_chunks(n, f);
  }
}
}  // namespace

Result<OptimizerKind> parse_optimizer_kind(const std::string& name) {
  if (name == "adamw") return OptimizerKind::AdamW;
  if (name == "sgd") return OptimizerKind::Sgd;
  return Status::errorf("unknown optimizer '{}' (expected adamw or sgd)", name);
}

std::string optimizer_kind_name(OptimizerKind kind) {
  return kind == OptimizerKind::AdamW ? "adamw" : "sgd";
}

Optimizer::Optimizer(ParamSet& params, const OptimizerOptions& options) : params_(params), opt_(options) {
  DSV3_CHECK(params.finalized(), "Optimizer needs a finalized ParamSet");
  if (has_moments()) {
    elem_ = opt_.moments == MomentDType::BF16 ? 2 : 4;
    // Zero bits are 0.0 in both f32 and bf16.
    m_.assign(size_t(params.numel()) * elem_, 0);
    v_.assign(size_t(params.numel()) * elem_, 0);
  }
}

uint8_t* Optimizer::moment_bytes(size_t tensor, int which) {
  const ParamTensor& t = params_.tensors().at(tensor);
  size_t off = size_t(t.data - params_.data()) * elem_;
  return (which == 0 ? m_.data() : v_.data()) + off;
}

const uint8_t* Optimizer::moment_bytes(size_t tensor, int which) const {
  return const_cast<Optimizer*>(this)->moment_bytes(tensor, which);
}

size_t Optimizer::moment_nbytes(size_t tensor) const {
  return has_moments() ? size_t(params_.tensors().at(tensor).numel) * elem_ : 0;
}

int64_t Optimizer::state_bytes() const { return int64_t(m_.size() + v_.size()); }

void Optimizer::step(double lr) {
  ++t_;
  const bool adamw = has_moments();
  const bool bf16 = adamw && opt_.moments == MomentDType::BF16;
  const float b1 = float(opt_.beta1), b2 = float(opt_.beta2), eps = float(opt_.eps);
  // Bias corrections in double once per step, then folded into f32 constants.
  const double bc1 = 1.0 - std::pow(opt_.beta1, double(t_));
  const double bc2 = 1.0 - std::pow(opt_.beta2, double(t_));
  const float step_size = float(lr / bc1);
  const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
  const float flr = float(lr);
  for (const ParamTensor& t : params_.tensors()) {
    const float decay = t.weight_decay ? float(1.0 - lr * opt_.weight_decay) : 1.0f;
    const int64_t base = t.data - params_.data();
    float* p = t.data;
    const float* g = t.grad;
    elementwise_chunks(t.numel, [&](int64_t b, int64_t e) {
      if (!adamw) {
        for (int64_t i = b; i < e; ++i) p[i] = p[i] * decay - flr * g[i];
        return;
      }
      if (bf16) {
        uint16_t* mb = reinterpret_cast<uint16_t*>(m_.data()) + base;
        uint16_t* vb = reinterpret_cast<uint16_t*>(v_.data()) + base;
        for (int64_t i = b; i < e; ++i) {
          // The update uses the stored (rounded) moments, as a BF16-moment optimizer does.
          mb[i] = f32_to_bf16(b1 * bf16_to_f32(mb[i]) + (1.0f - b1) * g[i]);
          vb[i] = f32_to_bf16(b2 * bf16_to_f32(vb[i]) + (1.0f - b2) * g[i] * g[i]);
          const float m = bf16_to_f32(mb[i]), v = bf16_to_f32(vb[i]);
          p[i] = p[i] * decay - step_size * m / (std::sqrt(v) * inv_sqrt_bc2 + eps);
        }
        return;
      }
      // f32 moments: a branch-free loop, vectorized (sqrt and division are exact IEEE operations,
      // so vector and scalar lanes give the same bits; the four arrays never overlap).
      float* mf = reinterpret_cast<float*>(m_.data()) + base;
      float* vf = reinterpret_cast<float*>(v_.data()) + base;
#pragma omp simd
      for (int64_t i = b; i < e; ++i) {
        const float m = b1 * mf[i] + (1.0f - b1) * g[i];
        const float v = b2 * vf[i] + (1.0f - b2) * g[i] * g[i];
        mf[i] = m;
        vf[i] = v;
        p[i] = p[i] * decay - step_size * m / (std::sqrt(v) * inv_sqrt_bc2 + eps);
      }
    });
  }
}

double grad_norm(const ParamSet& params) {
  const int64_t n = params.numel();
  const int64_t n_blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(size_t(std::max<int64_t>(n_blocks, 1)), 0.0);
  const float* g = params.grad();
  parallel_for(n_blocks, [&](int64_t blk) {
    // Four interleaved chains (lanes i mod 4) in a fixed order: one dependent chain of double
    // adds was the whole cost of this pass.
    double s[4] = {0, 0, 0, 0};
    const int64_t b = blk * kNormBlock, e = std::min(n, b + kNormBlock);
    int64_t i = b;
    for (; i + 4 <= e; i += 4) {
      for (int j = 0; j < 4; ++j) s[j] += double(g[i + j]) * g[i + j];
    }
    for (; i < e; ++i) s[0] += double(g[i]) * g[i];
    partial[size_t(blk)] = (s[0] + s[1]) + (s[2] + s[3]);
  });
  double total = 0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

double clip_grad_norm(ParamSet& params, double norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return 1.0;
  scale_grads(params, float(coef));
  return coef;
}

void scale_grads(ParamSet& params, float factor) {
  float* g = params.grad();
  elementwise_chunks(params.numel(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) g[i] *= factor;
  });
}

}  // namespace dsv3
