#include "train/train_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/parallel_for.h"
#include "core/rng.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/rmsnorm.h"
#include "model/gate.h"
#include "model/rope_table.h"
#include "train/layer_train.h"
#include "train/linear.h"
#include "train/model_params.h"

namespace dsv3 {

struct TrainModel::Impl {
  ModelConfig cfg;
  TrainModelOptions opt;
  RouterConfig router;
  ParamSet params;
  ModelParams P, G;  // values and gradients
  std::vector<int64_t> moe_index;  // per layer (main then MTP): index into counts/biases, or -1
  std::vector<std::vector<int64_t>> counts;
  std::vector<std::vector<float>> biases;
  ActivationArena arena;
  std::vector<RopeTable> rope;  // [0] main model, [k] MTP module k
  std::vector<int64_t> positions;
  float softmax_scale;
  int64_t depth = 0;  // MTP modules run by this model (0 when λ = 0)
  int64_t last_B = 0, last_T = 0;  // shape of the last forward

  Impl(const ModelConfig& c, const TrainModelOptions& o)
      : cfg(c),
        opt(o),
        router(RouterConfig::from(c)),
        arena(c, o.batch, o.seq_len, o.mtp_weight != 0.0 ? c.n_mtp_layers : 0, o.recompute, o.precision,
              o.f32_linear_inputs, o.f32_swiglu_inputs),
        softmax_scale(float(attention_softmax_scale(c))) {
    DSV3_CHECK(c.n_layers >= 1 && o.batch >= 1 && o.seq_len >= 1, "need layers, batch and seq_len >= 1");
    build_params(cfg, params, P, G);
    for (int64_t l = 0; l < c.n_layers + c.n_mtp_layers; ++l) {
      moe_index.push_back(c.is_moe_layer(l) ? int64_t(counts.size()) : -1);
      if (c.is_moe_layer(l)) {
        counts.emplace_back(size_t(c.n_routed_experts), 0);
        biases.emplace_back(size_t(c.n_routed_experts), 0.0f);
      }
    }
    depth = int64_t(arena.acts().mtp.size());
    positions.resize(size_t(o.batch * o.seq_len));
    for (int64_t k = 0; k <= depth; ++k) {
      rope.emplace_back(c);
      rope.back().compute(positions.data(), o.batch * (o.seq_len - k));  // sizes the tables once
    }
  }

  // cos/sin rows for B sequences of T tokens at positions 0..T-1.
  void fill_rope(int64_t k, int64_t B, int64_t T) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) positions[size_t(b * T + t)] = t;
    rope[size_t(k)].compute(positions.data(), B * T);
  }

  LayerContext context(int64_t k, int64_t B, int64_t T) {
    LayerContext ctx;
    ctx.cfg = &cfg;
    ctx.router = router;
    ctx.B = B;
    ctx.T = T;
    ctx.cos = rope[size_t(k)].cos();
    ctx.sin = rope[size_t(k)].sin();
    ctx.softmax_scale = softmax_scale;
    ctx.recompute = opt.recompute;
    ctx.balance_alpha = opt.balance_alpha;
    ctx.precision = opt.precision;
    ctx.scratch = &arena.acts().scratch;
    return ctx;
  }

  std::span<const float> bias_of(int64_t layer) const {
    const int64_t i = moe_index[size_t(layer)];
    if (i < 0 || !cfg.has_gate_bias()) return {};
    return biases[size_t(i)];
  }
  int64_t* counts_of(int64_t layer) {
    const int64_t i = moe_index[size_t(layer)];
    return i < 0 ? nullptr : counts[size_t(i)].data();
  }

  // Normalizer of L^k and the number of modules that fit in T.
  double mtp_normalizer(int64_t valid, int64_t B, int64_t T) const {
    return opt.mtp_report_normalizer ? double(B * T) : double(std::max<int64_t>(valid, 1));
  }
  int64_t depth_for(int64_t T) const { return std::min(depth, T - 1); }

  LossParts forward(const TrainBatch& batch);
  void backward(const TrainBatch& batch);
};

LossParts TrainModel::Impl::forward(const TrainBatch& batch) {
  const int64_t B = batch.batch, T = batch.seq_len, N = B * T;
  const int64_t D = cfg.dim, V = cfg.vocab_size;
  const float eps = float(cfg.rms_norm_eps);
  DSV3_CHECK(B >= 1 && B <= opt.batch && T >= 1 && T <= opt.seq_len,
             "batch ({}, {}) outside the planned ({}, {})", B, T, opt.batch, opt.seq_len);
  for (int64_t i = 0; i < B * (T + 1); ++i)
    DSV3_CHECK(batch.tokens[i] >= 0 && batch.tokens[i] < V, "token {} at {} outside [0, {})", batch.tokens[i], i, V);
  Activations& a = arena.acts();
  last_B = B;
  last_T = T;
  for (auto& c : counts) std::fill(c.begin(), c.end(), 0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      a.tokens[b * T + t] = batch.tokens[b * (T + 1) + t];
      a.targets[b * T + t] = batch.tokens[b * (T + 1) + t + 1];
    }
  }
  LossParts parts;
  // Main model: h = Embed[tokens] → layers → norm → head.
  fill_rope(0, B, T);
  LayerContext ctx = context(0, B, T);
  kernels::embedding_forward(a.layers[0].x_in, P.embed, a.tokens, N, D);
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    float* out = l + 1 < cfg.n_layers ? a.layers[size_t(l + 1)].x_in : a.x_final;
    parts.balance += layer_train_forward(out, a.layers[size_t(l)], P.layers[size_t(l)], bias_of(l), counts_of(l), ctx);
  }
  kernels::rmsnorm_forward(a.h, a.rstd_f, a.x_final, P.norm, N, D, eps);
  linear_forward(a.logits, a.h, P.head, N, D, V);
  const int64_t valid = kernels::cross_entropy_forward(a.losses, a.lse, a.logits, a.targets, N, V);
  double sum = 0.0;
  for (int64_t i = 0; i < N; ++i) sum += a.losses[i];
  parts.main = sum / double(std::max<int64_t>(valid, 1));

  // MTP modules (spec §2): module k over T − k positions, predicting t_{i+k+1}.
  double mtp_sum = 0.0;
  for (int64_t k = 1; k <= depth_for(T); ++k) {
    MtpActs& m = a.mtp[size_t(k - 1)];
    const LayerParams& p = P.mtp_layers[size_t(k - 1)];
    const int64_t Tk = T - k, Nk = B * Tk, Tsrc = Tk + 1;
    const float* hsrc = k == 1 ? a.h : a.mtp[size_t(k - 2)].h;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t i = 0; i < Tk; ++i) {
        m.tokens[b * Tk + i] = batch.tokens[b * (T + 1) + i + k];
        m.targets[b * Tk + i] = batch.tokens[b * (T + 1) + i + k + 1];
        std::memcpy(m.hprev + (b * Tk + i) * D, hsrc + (b * Tsrc + i) * D, size_t(D) * sizeof(float));
      }
    }
    kernels::embedding_forward(m.emb, P.embed, m.tokens, Nk, D);
    kernels::rmsnorm_forward(m.cat, 2 * D, m.rstd_e, m.emb, D, p.enorm, Nk, D, eps);
    kernels::rmsnorm_forward(m.cat + D, 2 * D, m.rstd_h, m.hprev, D, p.hnorm, Nk, D, eps);
    linear_forward(m.layer.x_in, m.cat, p.eh_proj, Nk, 2 * D, D);
    fill_rope(k, B, Tk);
    const int64_t layer = cfg.n_layers + k - 1;
    parts.balance += layer_train_forward(m.x_out, m.layer, p, bias_of(layer), counts_of(layer), context(k, B, Tk));
    kernels::rmsnorm_forward(m.h, m.rstd_o, m.x_out, p.head_norm, Nk, D, eps);
    linear_forward(m.logits, m.h, P.head, Nk, D, V);
    const int64_t valid_k = kernels::cross_entropy_forward(m.losses, m.lse, m.logits, m.targets, Nk, V);
    double s = 0.0;
    for (int64_t i = 0; i < Nk; ++i) s += m.losses[i];
    mtp_sum += s / mtp_normalizer(valid_k, B, T);
  }
  if (depth > 0) parts.mtp = mtp_sum / double(cfg.n_mtp_layers);
  parts.total = parts.main + opt.mtp_weight * parts.mtp + parts.balance;
  return parts;
}

void TrainModel::Impl::backward(const TrainBatch& batch) {
  const int64_t B = batch.batch, T = batch.seq_len, N = B * T;
  const int64_t D = cfg.dim, V = cfg.vocab_size;
  Activations& a = arena.acts();
  StepScratch& s = a.scratch;
  std::fill(a.dh, a.dh + N * D, 0.0f);
  for (int64_t k = 1; k <= depth_for(T); ++k) std::fill(a.mtp[size_t(k - 1)].dh, a.mtp[size_t(k - 1)].dh + B * (T - k) * D, 0.0f);

  // MTP modules, deepest first: each passes the gradient of its h_prev to the depth before.
  for (int64_t k = depth_for(T); k >= 1; --k) {
    MtpActs& m = a.mtp[size_t(k - 1)];
    const LayerParams& p = P.mtp_layers[size_t(k - 1)];
    const LayerParams& g = G.mtp_layers[size_t(k - 1)];
    const int64_t Tk = T - k, Nk = B * Tk, Tsrc = Tk + 1;
    int64_t valid_k = 0;
    for (int64_t i = 0; i < Nk; ++i) valid_k += m.targets[i] >= 0;
    const float dloss = float(opt.mtp_weight / double(cfg.n_mtp_layers) / mtp_normalizer(valid_k, B, T));
    kernels::cross_entropy_backward(s.dlogits, dloss, m.logits, m.lse, m.targets, Nk, V, /*accumulate=*/false);
    linear_backward(m.dh, G.head, s.dlogits, m.h, P.head, Nk, D, V);
    std::fill(s.dres, s.dres + Nk * D, 0.0f);
    kernels::rmsnorm_backward(s.dres, g.head_norm, m.dh, m.x_out, p.head_norm, m.rstd_o, Nk, D);
    layer_train_backward(s.dres, g, m.layer, p, context(k, B, Tk));
    std::fill(s.dcat, s.dcat + Nk * 2 * D, 0.0f);
    linear_backward(s.dcat, g.eh_proj, s.dres, m.cat, p.eh_proj, Nk, 2 * D, D);
    std::fill(s.demb, s.demb + Nk * D, 0.0f);
    kernels::rmsnorm_backward(s.demb, D, g.enorm, s.dcat, 2 * D, m.emb, D, p.enorm, m.rstd_e, Nk, D);
    kernels::embedding_backward(G.embed, s.demb, m.tokens, Nk, D);
    std::fill(s.dhprev, s.dhprev + Nk * D, 0.0f);
    kernels::rmsnorm_backward(s.dhprev, D, g.hnorm, s.dcat + D, 2 * D, m.hprev, D, p.hnorm, m.rstd_h, Nk, D);
    float* dst = k == 1 ? a.dh : a.mtp[size_t(k - 2)].dh;
    parallel_for(Nk, [&](int64_t r) {
      const int64_t b = r / Tk, i = r % Tk;
      float* d = dst + (b * Tsrc + i) * D;
      const float* src = s.dhprev + r * D;
      for (int64_t c = 0; c < D; ++c) d[c] += src[c];
    });
  }

  // Main model, reversed: head, final norm, layers, embedding.
  int64_t valid = 0;
  for (int64_t i = 0; i < N; ++i) valid += a.targets[i] >= 0;
  kernels::cross_entropy_backward(s.dlogits, float(1.0 / double(std::max<int64_t>(valid, 1))), a.logits, a.lse,
                                  a.targets, N, V, /*accumulate=*/false);
  linear_backward(a.dh, G.head, s.dlogits, a.h, P.head, N, D, V);
  std::fill(s.dres, s.dres + N * D, 0.0f);
  kernels::rmsnorm_backward(s.dres, G.norm, a.dh, a.x_final, P.norm, a.rstd_f, N, D);
  const LayerContext ctx = context(0, B, T);
  for (int64_t l = cfg.n_layers - 1; l >= 0; --l)
    layer_train_backward(s.dres, G.layers[size_t(l)], a.layers[size_t(l)], P.layers[size_t(l)], ctx);
  kernels::embedding_backward(G.embed, s.dres, a.tokens, N, D);
}

TrainModel::TrainModel(const ModelConfig& cfg, const TrainModelOptions& opt) : impl_(std::make_unique<Impl>(cfg, opt)) {}
TrainModel::~TrainModel() = default;

const ModelConfig& TrainModel::config() const { return impl_->cfg; }
ParamSet& TrainModel::params() { return impl_->params; }
const ParamSet& TrainModel::params() const { return impl_->params; }

void TrainModel::init(uint64_t seed, float std) {
  auto& tensors = impl_->params.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    ParamTensor& t = tensors[i];
    if (t.shape.size() == 1) {
      std::fill(t.data, t.data + t.numel, 1.0f);
      continue;
    }
    const Rng rng(seed, i);
    parallel_for(t.numel, [&](int64_t j) { t.data[j] = std * rng.normal(uint64_t(j)); });
  }
  for (auto& b : impl_->biases) std::fill(b.begin(), b.end(), 0.0f);
}

LossParts TrainModel::forward_backward(const TrainBatch& batch) {
  LossParts parts = impl_->forward(batch);
  impl_->backward(batch);
  return parts;
}

LossParts TrainModel::evaluate(const TrainBatch& batch) { return impl_->forward(batch); }

const std::vector<std::vector<int64_t>>& TrainModel::expert_counts() const { return impl_->counts; }
std::vector<std::vector<float>>& TrainModel::router_biases() { return impl_->biases; }

ModelWeights TrainModel::weights_view() const { return params_weights_view(impl_->cfg, impl_->P, impl_->biases); }

Status TrainModel::load_params_from(const ModelWeights& weights) {
  return copy_weights_into_params(impl_->cfg, weights, impl_->P, impl_->biases);
}

uint64_t TrainModel::routing_digest() const {
  const Impl& m = *impl_;
  const Activations& a = m.arena.acts();
  const int64_t K = m.cfg.n_activated_experts, E = m.cfg.n_routed_experts;
  uint64_t h = 0;
  auto mix = [&](uint64_t v) { h = splitmix64(h ^ v); };
  auto layer = [&](const LayerActs& L, int64_t T) {
    if (L.ffn.experts == nullptr) return;
    for (int64_t i = 0; i < m.last_B * T * K; ++i) mix(uint64_t(L.ffn.experts[i]));
    if (m.opt.balance_alpha != 0.0) {
      for (int64_t i = 0; i < m.last_B * E; ++i) mix(uint64_t(std::llround(double(L.ffn.f[i]) * 1e6)));
    }
  };
  for (const auto& L : a.layers) layer(L, m.last_T);
  for (int64_t k = 1; k <= m.depth_for(m.last_T); ++k) layer(a.mtp[size_t(k - 1)].layer, m.last_T - k);
  return h;
}

int64_t TrainModel::activation_bytes() const { return impl_->arena.bytes(); }
int64_t TrainModel::linear_input_bytes() const { return impl_->arena.linear_input_bytes(); }
const std::vector<ActivationEntry>& TrainModel::activation_table() const { return impl_->arena.table(); }

}  // namespace dsv3
