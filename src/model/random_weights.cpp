#include "model/random_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/numeric.h"
#include "core/parallel_for.h"
#include "core/rng.h"
#include "kernels/convert.h"

namespace dsv3 {

using kernels::kFp8Block;

RandomWeights::RandomWeights(const ModelConfig& cfg, const RandomWeightsOptions& opt) : opt_(opt) {
  // Tensors that stay in high precision in DeepSeek's FP8 checkpoints (embedding, head, router,
  // eh_proj) are BF16 there; F32 models keep everything F32.
  const DType hi = opt.dtype == DType::F32 ? DType::F32 : DType::BF16;
  const DType lin = opt.dtype;
  const int64_t D = cfg.dim, H = cfg.n_heads;
  auto mlp = [&](int64_t inter) { return MlpWeights{matrix(inter, D, lin), matrix(D, inter, lin), matrix(inter, D, lin)}; };
  auto layer = [&](int64_t l) {
    LayerWeights L;
    L.attn_norm = vector(D, 1.0f, opt.norm_noise);
    L.ffn_norm = vector(D, 1.0f, opt.norm_noise);
    auto& a = L.attn;
    if (cfg.q_lora_rank > 0) {
      a.wq_a = matrix(cfg.q_lora_rank, D, lin);
      a.q_norm = vector(cfg.q_lora_rank, 1.0f, opt.norm_noise);
      a.wq_b = matrix(H * cfg.qk_head_dim(), cfg.q_lora_rank, lin);
    } else {
      a.wq = matrix(H * cfg.qk_head_dim(), D, lin);
    }
    a.wkv_a = matrix(cfg.kv_lora_rank + cfg.qk_rope_head_dim, D, lin);
    a.kv_norm = vector(cfg.kv_lora_rank, 1.0f, opt.norm_noise);
    a.wkv_b = matrix(H * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank, lin);
    a.wo = matrix(D, H * cfg.v_head_dim, lin);
    L.is_moe = cfg.is_moe_layer(l);
    if (L.is_moe) {
      L.moe.gate = matrix(cfg.n_routed_experts, D, hi);
      if (cfg.has_gate_bias()) L.moe.bias = vector(cfg.n_routed_experts, 0.0f, opt.bias_range);
      for (int64_t e = 0; e < cfg.n_routed_experts; ++e) L.moe.experts.push_back(mlp(cfg.moe_inter_dim));
      if (cfg.n_shared_experts > 0) {
        L.moe.shared = mlp(cfg.moe_inter_dim * cfg.n_shared_experts);
        L.moe.has_shared = true;
      }
    } else {
      L.mlp = mlp(cfg.inter_dim);
    }
    return L;
  };
  weights_.embed = matrix(cfg.vocab_size, D, hi);
  for (int64_t l = 0; l < cfg.n_layers; ++l) weights_.layers.push_back(layer(l));
  weights_.norm = vector(D, 1.0f, opt.norm_noise);
  weights_.head = cfg.tie_word_embeddings ? weights_.embed : matrix(cfg.vocab_size, D, opt.head_dtype.value_or(hi));
  for (int64_t k = 0; k < cfg.n_mtp_layers; ++k) {
    LayerWeights L = layer(cfg.n_layers + k);
    L.mtp.enorm = vector(D, 1.0f, opt.norm_noise);
    L.mtp.hnorm = vector(D, 1.0f, opt.norm_noise);
    L.mtp.eh_proj = matrix(D, 2 * D, hi);
    L.mtp.head_norm = vector(D, 1.0f, opt.norm_noise);
    weights_.mtp_layers.push_back(std::move(L));
  }
}

WeightMatrix RandomWeights::matrix(int64_t rows, int64_t cols, DType dtype) {
  const uint64_t stream = counter_++;
  const Rng rng(opt_.seed, stream);
  // Uniform with the requested standard deviation: cheap to draw for large benchmark models.
  const float a = opt_.std * std::sqrt(3.0f);
  auto value = [&](int64_t r, int64_t c) { return a * (2.0f * rng.uniform(uint64_t(r * cols + c)) - 1.0f); };
  const int64_t n = rows * cols;
  auto buf = std::make_unique<uint8_t[]>(size_t(n) * dtype_size(dtype));
  WeightMatrix w{buf.get(), dtype, rows, cols};
  switch (dtype) {
    case DType::F32:
      parallel_for(rows, [&](int64_t r) {
        for (int64_t c = 0; c < cols; ++c) reinterpret_cast<float*>(buf.get())[r * cols + c] = value(r, c);
      });
      break;
    case DType::BF16:
    case DType::F16:
      parallel_for(rows, [&](int64_t r) {
        auto* p = reinterpret_cast<uint16_t*>(buf.get());
        for (int64_t c = 0; c < cols; ++c)
          p[r * cols + c] = dtype == DType::BF16 ? f32_to_bf16(value(r, c)) : f32_to_f16(value(r, c));  // F16: tests only
      });
      break;
    case DType::F8_E4M3: {
      // Per 128x128 block: scale = amax / 448, q = RNE(w / scale) (spec §5.3).
      const int64_t br = (rows + kFp8Block - 1) / kFp8Block, bc = (cols + kFp8Block - 1) / kFp8Block;
      auto scales = std::make_unique<float[]>(size_t(br * bc));
      parallel_for(br * bc, [&](int64_t b) {
        const int64_t r0 = (b / bc) * kFp8Block, c0 = (b % bc) * kFp8Block;
        const int64_t r1 = std::min(rows, r0 + kFp8Block), c1 = std::min(cols, c0 + kFp8Block);
        float block[kFp8Block * kFp8Block];
        float amax = 0.0f;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) {
            float v = value(r, c);
            block[(r - r0) * kFp8Block + (c - c0)] = v;
            amax = std::max(amax, std::fabs(v));
          }
        const float s = std::max(amax, 1e-4f) / kE4M3Max;
        scales[size_t(b)] = s;
        for (int64_t r = r0; r < r1; ++r) {
          float* row = block + (r - r0) * kFp8Block;
          for (int64_t c = 0; c < c1 - c0; ++c) row[c] /= s;
          kernels::convert_f32_to_e4m3(buf.get() + r * cols + c0, row, c1 - c0);
        }
      });
      w.scale_inv = scales.get();
      matrix_bytes_ += br * bc * 4;
      scales_.push_back(std::move(scales));
      break;
    }
    default: DSV3_FAIL("random weights: unsupported dtype {}", dtype_name(dtype));
  }
  matrix_bytes_ += n * int64_t(dtype_size(dtype));
  storage_.push_back(std::move(buf));
  return w;
}

std::vector<float> RandomWeights::vector(int64_t n, float center, float noise) {
  const Rng rng(opt_.seed, counter_++);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = center + noise * (2.0f * rng.uniform(uint64_t(i)) - 1.0f);
  return v;
}

}  // namespace dsv3
