#include "train/model_params.h"

#include <fmt/format.h>

#include <type_traits>

#include "core/check.h"

namespace dsv3 {
namespace {

// Walks ModelParams and ModelWeights side by side, in for_each_param order. mat(param, matrix,
// rows, cols, name) and vec(param, vector, n, name) see each tensor; bias(layer_weights, moe_index)
// sees each MoE layer. W is ModelWeights (shaped here) or const ModelWeights (read).
template <typename W, typename Mat, typename Vec, typename Bias>
void zip(const ModelConfig& c, const ModelParams& p, W& w, Mat&& mat, Vec&& vec, Bias&& bias) {
  constexpr bool kShape = !std::is_const_v<W>;
  const int64_t D = c.dim, H = c.n_heads, dqk = c.qk_head_dim();
  auto mlp = [&](const std::string& pre, const MlpParams& mp, auto& mw) {
    mat(mp.w1, mw.w1, mp.inter, D, pre + "gate_proj.weight");
    mat(mp.w3, mw.w3, mp.inter, D, pre + "up_proj.weight");
    mat(mp.w2, mw.w2, D, mp.inter, pre + "down_proj.weight");
  };
  int64_t moe_index = 0;
  auto layer = [&](const std::string& pre, const LayerParams& lp, auto& lw) {
    const AttnParams& a = lp.attn;
    auto& aw = lw.attn;
    if (c.q_lora_rank > 0) {
      mat(a.wq_a, aw.wq_a, c.q_lora_rank, D, pre + "self_attn.q_a_proj.weight");
      vec(a.q_norm, aw.q_norm, c.q_lora_rank, pre + "self_attn.q_a_layernorm.weight");
      mat(a.wq_b, aw.wq_b, H * dqk, c.q_lora_rank, pre + "self_attn.q_b_proj.weight");
    } else {
      mat(a.wq, aw.wq, H * dqk, D, pre + "self_attn.q_proj.weight");
    }
    mat(a.wkv_a, aw.wkv_a, c.kv_lora_rank + c.qk_rope_head_dim, D, pre + "self_attn.kv_a_proj_with_mqa.weight");
    vec(a.kv_norm, aw.kv_norm, c.kv_lora_rank, pre + "self_attn.kv_a_layernorm.weight");
    mat(a.wkv_b, aw.wkv_b, H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank,
        pre + "self_attn.kv_b_proj.weight");
    mat(a.wo, aw.wo, D, H * c.v_head_dim, pre + "self_attn.o_proj.weight");
    if constexpr (kShape) lw.is_moe = lp.is_moe;
    if (lp.is_moe) {
      if constexpr (kShape) lw.moe.experts.resize(lp.experts.size());
      DSV3_CHECK(lw.moe.experts.size() == lp.experts.size(), "expert count mismatch");
      for (size_t e = 0; e < lp.experts.size(); ++e)
        mlp(fmt::format("{}mlp.experts.{}.", pre, e), lp.experts[e], lw.moe.experts[e]);
      mat(lp.gate, lw.moe.gate, int64_t(lp.experts.size()), D, pre + "mlp.gate.weight");
      bias(lw.moe, moe_index++);
      if constexpr (kShape) lw.moe.has_shared = lp.has_shared;
      if (lp.has_shared) mlp(pre + "mlp.shared_experts.", lp.shared, lw.moe.shared);
    } else {
      mlp(pre + "mlp.", lp.mlp, lw.mlp);
    }
    vec(lp.attn_norm, lw.attn_norm, D, pre + "input_layernorm.weight");
    vec(lp.ffn_norm, lw.ffn_norm, D, pre + "post_attention_layernorm.weight");
  };
  if constexpr (kShape) {
    w.layers.resize(p.layers.size());
    w.mtp_layers.resize(p.mtp_layers.size());
  }
  mat(p.embed, w.embed, c.vocab_size, D, "model.embed_tokens.weight");
  for (size_t l = 0; l < p.layers.size(); ++l) layer(fmt::format("model.layers.{}.", l), p.layers[l], w.layers[l]);
  vec(p.norm, w.norm, D, "model.norm.weight");
  if (!c.tie_word_embeddings) mat(p.head, w.head, c.vocab_size, D, "lm_head.weight");
  for (size_t k = 0; k < p.mtp_layers.size(); ++k) {
    const std::string pre = fmt::format("model.layers.{}.", c.n_layers + int64_t(k));
    const LayerParams& lp = p.mtp_layers[k];
    auto& lw = w.mtp_layers[k];
    vec(lp.enorm, lw.mtp.enorm, D, pre + "enorm.weight");
    vec(lp.hnorm, lw.mtp.hnorm, D, pre + "hnorm.weight");
    mat(lp.eh_proj, lw.mtp.eh_proj, D, 2 * D, pre + "eh_proj.weight");
    layer(pre, lp, lw);
    vec(lp.head_norm, lw.mtp.head_norm, D, pre + "shared_head.norm.weight");
  }
}

}  // namespace

void for_each_param(const ModelConfig& c, ModelParams& p, const ParamVisitor& fn) {
  // Shape the struct, then walk it with zip() against a scratch ModelWeights: the names and
  // order live only in zip().
  const int64_t E = c.n_routed_experts;
  auto shape_layer = [&](LayerParams& lp, int64_t l) {
    lp.is_moe = c.is_moe_layer(l);
    lp.mlp.inter = c.inter_dim;
    lp.experts.assign(size_t(lp.is_moe ? E : 0), MlpParams{nullptr, nullptr, nullptr, c.moe_inter_dim});
    lp.has_shared = lp.is_moe && c.n_shared_experts > 0;
    lp.shared.inter = c.moe_inter_dim * c.n_shared_experts;
  };
  p.layers.resize(size_t(c.n_layers));
  p.mtp_layers.resize(size_t(c.n_mtp_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) shape_layer(p.layers[size_t(l)], l);
  for (int64_t k = 0; k < c.n_mtp_layers; ++k) shape_layer(p.mtp_layers[size_t(k)], c.n_layers + k);
  ModelWeights scratch;
  zip(
      c, p, scratch,
      [&](float* const& slot, WeightMatrix&, int64_t rows, int64_t cols, const std::string& name) {
        fn(name, {rows, cols}, true, const_cast<float*&>(slot));
      },
      [&](float* const& slot, std::vector<float>&, int64_t n, const std::string& name) {
        fn(name, {n}, false, const_cast<float*&>(slot));
      },
      [](MoeWeights&, int64_t) {});
}

void build_params(const ModelConfig& cfg, ParamSet& set, ModelParams& values, ModelParams& grads) {
  for_each_param(cfg, values, [&](const std::string& name, const std::vector<int64_t>& shape, bool decay, float*&) {
    set.add(name, shape, decay);
  });
  set.finalize();
  size_t i = 0;
  for_each_param(cfg, values, [&](const std::string&, const std::vector<int64_t>&, bool, float*& slot) {
    slot = set.tensors()[i++].data;
  });
  i = 0;
  for_each_param(cfg, grads, [&](const std::string&, const std::vector<int64_t>&, bool, float*& slot) {
    slot = set.tensors()[i++].grad;
  });
  if (cfg.tie_word_embeddings) {
    values.head = values.embed;
    grads.head = grads.embed;
  }
}

ModelWeights params_weights_view(const ModelConfig& cfg, const ModelParams& p,
                                 const std::vector<std::vector<float>>& router_biases) {
  ModelWeights w;
  zip(
      cfg, p, w,
      [](const float* src, WeightMatrix& m, int64_t rows, int64_t cols, const std::string&) {
        m = WeightMatrix{};
        m.data = src;
        m.dtype = DType::F32;
        m.rows = rows;
        m.cols = cols;
      },
      [](const float* src, std::vector<float>& v, int64_t n, const std::string&) { v.assign(src, src + n); },
      [&](MoeWeights& m, int64_t i) {
        if (cfg.has_gate_bias()) m.bias = router_biases[size_t(i)];
      });
  if (cfg.tie_word_embeddings) w.head = w.embed;
  return w;
}

Status copy_weights_into_params(const ModelConfig& cfg, const ModelWeights& src, ModelParams& p,
                                std::vector<std::vector<float>>& router_biases) {
  Status status;
  auto fail = [&](std::string msg) {
    if (status.is_ok()) status = Status::error(std::move(msg));
  };
  if (src.layers.size() != p.layers.size() || src.mtp_layers.size() != p.mtp_layers.size()) {
    return Status::errorf("the weights have {} layers and {} MTP layers, the model {} and {}", src.layers.size(),
                          src.mtp_layers.size(), p.layers.size(), p.mtp_layers.size());
  }
  zip(
      cfg, p, src,
      [&](float* dst, const WeightMatrix& m, int64_t rows, int64_t cols, const std::string& name) {
        if (m.empty() || m.rows != rows || m.cols != cols) {
          return fail(fmt::format("{}: expected a ({}, {}) matrix, got ({}, {})", name, rows, cols, m.rows, m.cols));
        }
        for (int64_t r = 0; r < rows; ++r) kernels::dequantize_row(dst + r * cols, m, r);
      },
      [&](float* dst, const std::vector<float>& v, int64_t n, const std::string& name) {
        if (int64_t(v.size()) != n) return fail(fmt::format("{}: expected {} values, got {}", name, n, v.size()));
        std::copy(v.begin(), v.end(), dst);
      },
      [&](const MoeWeights& m, int64_t i) {
        auto& b = router_biases[size_t(i)];
        if (m.bias.empty()) {
          std::fill(b.begin(), b.end(), 0.0f);
        } else if (m.bias.size() != b.size()) {
          fail(fmt::format("router bias of MoE layer {}: expected {} values, got {}", i, b.size(), m.bias.size()));
        } else {
          b = m.bias;
        }
      });
  return status;
}

}  // namespace dsv3
