#include "model/loader.h"

#include <cstring>
#include <set>

#include "core/check.h"
#include "core/numeric.h"

namespace dsv3 {

namespace {

// Builds the specs of one model; `w` (optional) receives the slot pointers.
class TensorLister {
 public:
  TensorLister(const ModelConfig& c, ModelWeights* w, const TensorVisitor& visit) : c_(c), w_(w), visit_(visit) {}

  void run() {
    const ModelConfig& c = c_;
    if (w_ != nullptr) shape_weights();
    matrix("model.embed_tokens.weight", c.vocab_size, c.dim, TensorRole::Embedding, false, w_ ? &w_->embed : nullptr);
    for (int64_t l = 0; l < c.n_layers + c.n_mtp_layers; ++l) layer(l);
    vector("model.norm.weight", c.dim, TensorRole::Norm, w_ ? &w_->norm : nullptr);
    if (!c.tie_word_embeddings) matrix("lm_head.weight", c.vocab_size, c.dim, TensorRole::Head, false, w_ ? &w_->head : nullptr);
  }

 private:
  void shape_weights() {
    w_->layers.assign(size_t(c_.n_layers), LayerWeights{});
    w_->mtp_layers.assign(size_t(c_.n_mtp_layers), LayerWeights{});
    for (int64_t l = 0; l < c_.n_layers + c_.n_mtp_layers; ++l) {
      LayerWeights& lw = layer_weights(l);
      lw.is_moe = c_.is_moe_layer(l);
      if (lw.is_moe) {
        lw.moe.experts.assign(size_t(c_.n_routed_experts), MlpWeights{});
        lw.moe.has_shared = c_.n_shared_experts > 0;
      }
    }
  }

  LayerWeights& layer_weights(int64_t l) {
    return l < c_.n_layers ? w_->layers[size_t(l)] : w_->mtp_layers[size_t(l - c_.n_layers)];
  }

  void matrix(std::string name, int64_t rows, int64_t cols, TensorRole role, bool fp8, WeightMatrix* dst,
              bool optional = false) {
    TensorSpec s;
    s.name = std::move(name);
    s.shape = {rows, cols};
    s.role = role;
    s.layer = layer_;
    s.mtp = layer_ >= c_.n_layers;
    s.expert = expert_;
    s.optional = optional;
    s.fp8_allowed = fp8;
    visit_(s, TensorSlot{dst, nullptr});
  }

  void vector(std::string name, int64_t n, TensorRole role, std::vector<float>* dst) {
    TensorSpec s;
    s.name = std::move(name);
    s.shape = {n};
    s.role = role;
    s.layer = layer_;
    s.mtp = layer_ >= c_.n_layers;
    visit_(s, TensorSlot{nullptr, dst});
  }

  // Linear projections inside decoder layers are the ones FP8 checkpoints quantize (spec §5.2).
  void linear(const std::string& name, int64_t rows, int64_t cols, WeightMatrix* dst) {
    matrix(name, rows, cols, TensorRole::Linear, true, dst);
  }

  void mlp(const std::string& p, int64_t inter, MlpWeights* m) {
    linear(p + "gate_proj.weight", inter, c_.dim, m ? &m->w1 : nullptr);
    linear(p + "up_proj.weight", inter, c_.dim, m ? &m->w3 : nullptr);
    linear(p + "down_proj.weight", c_.dim, inter, m ? &m->w2 : nullptr);
  }

  void layer(int64_t l) {
    const ModelConfig& c = c_;
    layer_ = l;
    LayerWeights* lw = w_ ? &layer_weights(l) : nullptr;
    const bool mtp = l >= c.n_layers;
    const std::string p = fmt::format("model.layers.{}.", l);
    MtpWeights* mw = lw ? &lw->mtp : nullptr;
    if (mtp) {
      vector(p + "enorm.weight", c.dim, TensorRole::Norm, mw ? &mw->enorm : nullptr);
      vector(p + "hnorm.weight", c.dim, TensorRole::Norm, mw ? &mw->hnorm : nullptr);
      matrix(p + "eh_proj.weight", c.dim, 2 * c.dim, TensorRole::Linear, false, mw ? &mw->eh_proj : nullptr);
    }
    vector(p + "input_layernorm.weight", c.dim, TensorRole::Norm, lw ? &lw->attn_norm : nullptr);
    AttentionWeights* a = lw ? &lw->attn : nullptr;
    const std::string ap = p + "self_attn.";
    const int64_t H = c.n_heads;
    if (c.q_lora_rank > 0) {
      linear(ap + "q_a_proj.weight", c.q_lora_rank, c.dim, a ? &a->wq_a : nullptr);
      vector(ap + "q_a_layernorm.weight", c.q_lora_rank, TensorRole::Norm, a ? &a->q_norm : nullptr);
      linear(ap + "q_b_proj.weight", H * c.qk_head_dim(), c.q_lora_rank, a ? &a->wq_b : nullptr);
    } else {
      linear(ap + "q_proj.weight", H * c.qk_head_dim(), c.dim, a ? &a->wq : nullptr);
    }
    linear(ap + "kv_a_proj_with_mqa.weight", c.kv_lora_rank + c.qk_rope_head_dim, c.dim, a ? &a->wkv_a : nullptr);
    vector(ap + "kv_a_layernorm.weight", c.kv_lora_rank, TensorRole::Norm, a ? &a->kv_norm : nullptr);
    linear(ap + "kv_b_proj.weight", H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank, a ? &a->wkv_b : nullptr);
    linear(ap + "o_proj.weight", c.dim, H * c.v_head_dim, a ? &a->wo : nullptr);
    vector(p + "post_attention_layernorm.weight", c.dim, TensorRole::Norm, lw ? &lw->ffn_norm : nullptr);
    if (c.is_moe_layer(l)) {
      MoeWeights* m = lw ? &lw->moe : nullptr;
      matrix(p + "mlp.gate.weight", c.n_routed_experts, c.dim, TensorRole::RouterGate, false, m ? &m->gate : nullptr);
      if (c.has_gate_bias()) {
        vector(p + "mlp.gate.e_score_correction_bias", c.n_routed_experts, TensorRole::RouterBias,
               m ? &m->bias : nullptr);
      }
      for (int64_t e = 0; e < c.n_routed_experts; ++e) {
        expert_ = e;
        mlp(fmt::format("{}mlp.experts.{}.", p, e), c.moe_inter_dim, m ? &m->experts[size_t(e)] : nullptr);
      }
      expert_ = -1;
      if (c.n_shared_experts > 0) {
        mlp(p + "mlp.shared_experts.", c.moe_inter_dim * c.n_shared_experts, m ? &m->shared : nullptr);
      }
    } else {
      mlp(p + "mlp.", c.inter_dim, lw ? &lw->mlp : nullptr);
    }
    if (mtp) {
      vector(p + "shared_head.norm.weight", c.dim, TensorRole::Norm, mw ? &mw->head_norm : nullptr);
      matrix(p + "embed_tokens.weight", c.vocab_size, c.dim, TensorRole::Embedding, false, mw ? &mw->embed : nullptr,
             /*optional=*/true);
      matrix(p + "shared_head.head.weight", c.vocab_size, c.dim, TensorRole::Head, false, mw ? &mw->head : nullptr,
             /*optional=*/true);
    }
    layer_ = -1;
  }

  const ModelConfig& c_;
  ModelWeights* w_;
  const TensorVisitor& visit_;
  int64_t layer_ = -1;
  int64_t expert_ = -1;
};

const char* role_name(TensorRole r) {
  switch (r) {
    case TensorRole::Linear: return "a projection matrix";
    case TensorRole::Norm: return "a norm weight";
    case TensorRole::Embedding: return "an embedding";
    case TensorRole::Head: return "an output head";
    case TensorRole::RouterGate: return "a router gate";
    case TensorRole::RouterBias: return "a router bias";
  }
  return "a tensor";
}

bool is_float_dtype(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

float element_to_f32(const uint8_t* p, DType t) {
  switch (t) {
    case DType::F32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::BF16: {
      uint16_t b;
      std::memcpy(&b, p, 2);
      return bf16_to_f32(b);
    }
    case DType::F16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return f16_to_f32(h);
    }
    default: DSV3_FAIL("element_to_f32: dtype {} not validated", dtype_name(t));
  }
}

class WeightBinder {
 public:
  WeightBinder(LoadedModel& m) : m_(m) {}

  void bind(const TensorSpec& s, TensorSlot slot) {
    const Checkpoint& ck = m_.checkpoint;
    const TensorInfo* t = ck.find(s.name);
    if (t == nullptr) {
      if (!s.optional) {
        error("{}: missing tensor '{}' ({} of shape {} per config.json)", ck.root(), s.name, role_name(s.role),
              shape_str(s.shape));
      }
      return;
    }
    used_.insert(s.name);
    std::string scale_name = fp8_scale_name(s.name);
    const TensorInfo* sc = s.is_matrix() ? ck.find(scale_name) : nullptr;
    if (sc != nullptr) used_.insert(scale_name);  // judged with its weight, never as an extra
    if (t->shape != s.shape) {
      error("{}: tensor '{}' has shape {}, expected {} per config.json", t->file, s.name, shape_str(t->shape),
            shape_str(s.shape));
      return;
    }
    bool fp8 = t->dtype == DType::F8_E4M3 && s.fp8_allowed;
    if (!is_float_dtype(t->dtype) && !fp8) {
      error("{}: tensor '{}' has dtype {}; {} must be F32, BF16 or F16{}", t->file, s.name, dtype_name(t->dtype),
            role_name(s.role), s.fp8_allowed ? " or F8_E4M3 with block scales" : "");
      return;
    }
    const TensorInfo* scale = nullptr;
    if (sc != nullptr) {
      if (!fp8) {
        error("{}: tensor '{}' is an FP8 block scale but its weight '{}' is {}, not F8_E4M3", sc->file, scale_name,
              s.name, dtype_name(t->dtype));
        return;
      }
      scale = sc;
    }
    if (fp8) {
      auto want = fp8_scale_shape(s.shape[0], s.shape[1]);
      if (scale == nullptr) {
        error("{}: FP8 tensor '{}' has no block scale tensor '{}' (F32, shape {})", t->file, s.name, scale_name,
              shape_str(want));
        return;
      }
      if (scale->dtype != DType::F32 || scale->shape != want) {
        error("{}: FP8 scale '{}' is {} of shape {}, expected F32 of shape {} (ceil of {} / 128)", scale->file,
              scale_name, dtype_name(scale->dtype), shape_str(scale->shape), shape_str(want), shape_str(s.shape));
        return;
      }
    }
    if (slot.vector != nullptr) {
      slot.vector->resize(size_t(s.shape[0]));
      size_t es = dtype_size(t->dtype);
      for (int64_t i = 0; i < s.shape[0]; ++i) (*slot.vector)[size_t(i)] = element_to_f32(t->data + size_t(i) * es, t->dtype);
    } else if (slot.matrix != nullptr) {
      WeightMatrix& w = *slot.matrix;
      w.data = aligned(t->data, t->nbytes, dtype_size(t->dtype));
      w.dtype = t->dtype;
      w.rows = s.shape[0];
      w.cols = s.shape[1];
      w.scale_inv = scale ? static_cast<const float*>(aligned(scale->data, scale->nbytes, 4)) : nullptr;
      w.scale_row_offset = 0;
    }
  }

  // Everything the expected list did not claim.
  void check_extras(const ModelConfig& c) {
    for (const std::string& name : m_.checkpoint.names()) {
      if (used_.count(name)) continue;
      const TensorInfo* t = m_.checkpoint.find(name);
      const std::string suffix = "_scale_inv";
      if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        std::string weight = name.substr(0, name.size() - suffix.size());
        error("{}: FP8 scale '{}' has no weight '{}' in the model", t->file, name, weight);
      } else {
        error("{}: unexpected tensor '{}' (not part of a {} model with this config.json: {} layers + {} MTP, {} "
              "routed experts, q_lora_rank {}, tie_word_embeddings {})",
              t->file, name, c.model_type, c.n_layers, c.n_mtp_layers, c.n_routed_experts, c.q_lora_rank,
              c.tie_word_embeddings);
      }
    }
  }

  Status status() const {
    if (errors_.empty()) return Status::ok();
    if (errors_.size() == 1) return Status::error(errors_[0]);
    return Status::errorf("{} (and {} more problem{})", errors_[0], errors_.size() - 1, errors_.size() > 2 ? "s" : "");
  }

 private:
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) {
    errors_.push_back(fmt::format(f, std::forward<Args>(args)...));
  }

  // `p` itself when naturally aligned, else an owned aligned copy.
  const void* aligned(const uint8_t* p, size_t n, size_t align) {
    if (reinterpret_cast<uintptr_t>(p) % align == 0) return p;
    auto& copy = m_.aligned_copies.emplace_back((n + 7) / 8);
    std::memcpy(copy.data(), p, n);
    return copy.data();
  }

  LoadedModel& m_;
  std::set<std::string> used_;
  std::vector<std::string> errors_;
};

}  // namespace

void for_each_tensor(const ModelConfig& cfg, ModelWeights* weights, const TensorVisitor& visit) {
  TensorLister(cfg, weights, visit).run();
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& cfg) {
  std::vector<TensorSpec> out;
  for_each_tensor(cfg, nullptr, [&](const TensorSpec& s, TensorSlot) { out.push_back(s); });
  return out;
}

std::string fp8_scale_name(const std::string& weight_name) { return weight_name + "_scale_inv"; }

std::vector<int64_t> fp8_scale_shape(int64_t rows, int64_t cols) {
  return {(rows + kernels::kFp8Block - 1) / kernels::kFp8Block, (cols + kernels::kFp8Block - 1) / kernels::kFp8Block};
}

Result<LoadedModel> load_model(const ModelConfig& cfg, Checkpoint checkpoint) {
  // A config can describe billions of tensors (65536 layers x 65536 experts passes
  // validation); refuse before enumerating them when the checkpoint cannot possibly match.
  int64_t at_least = 3;  // embed_tokens, norm, and lm_head or the first layer's norm
  for (int64_t l = 0; l < cfg.n_layers + cfg.n_mtp_layers; ++l) at_least += cfg.is_moe_layer(l) ? 3 * cfg.n_routed_experts : 3;
  if (at_least > int64_t(checkpoint.size())) {
    return Status::errorf("{}: config.json describes at least {} tensors but the checkpoint holds {}",
                          checkpoint.root(), at_least, checkpoint.size());
  }
  LoadedModel m;
  m.config = cfg;
  m.checkpoint = std::move(checkpoint);
  WeightBinder binder(m);
  for_each_tensor(m.config, &m.weights, [&](const TensorSpec& s, TensorSlot slot) { binder.bind(s, slot); });
  binder.check_extras(m.config);
  DSV3_TRY(binder.status());
  if (m.config.tie_word_embeddings) m.weights.head = m.weights.embed;
  return m;
}

Result<LoadedModel> load_model(const std::string& dir) {
  auto cfg = load_model_config(dir);
  DSV3_TRY(cfg);
  auto ck = Checkpoint::open(dir);
  DSV3_TRY(ck);
  return load_model(cfg.value(), std::move(ck.value()));
}

}  // namespace dsv3
