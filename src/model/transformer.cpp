#include "model/transformer.h"

#include <algorithm>
#include <cstring>

#include "kernels/rmsnorm.h"

namespace dsv3 {

namespace {
template <typename T>
T* grow(std::vector<T>& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}
}  // namespace

Transformer::Transformer(const ModelConfig& cfg, const ModelWeights& weights, MoeDispatcher* dispatcher)
    : cfg_(cfg),
      w_(weights),
      router_(RouterConfig::from(cfg)),
      local_dispatcher_(dispatcher ? nullptr : std::make_unique<LocalMoeDispatcher>()),
      dispatcher_(dispatcher ? dispatcher : local_dispatcher_.get()),
      rope_(cfg),
      mla_(cfg) {}

Status Transformer::check_batch(std::span<const SeqChunk> batch, int64_t& N) {
  N = 0;
  for (size_t j = 0; j < batch.size(); ++j) {
    // Each chunk gives logits for its last token, so it must have one.
    if (batch[j].n_tokens < 1) return Status::errorf("chunk {} of the batch has no tokens", j);
  }
  for (const auto& c : batch) {
    for (int64_t i = 0; i < c.n_tokens; ++i) {
      if (c.tokens[i] < 0 || c.tokens[i] >= cfg_.vocab_size) {
        return Status::errorf("token id {} at index {} is outside the vocabulary [0, {})", c.tokens[i], i,
                              cfg_.vocab_size);
      }
    }
    const int64_t end = c.cache->length() + c.n_tokens;
    if (end > cfg_.max_position_embeddings) {
      return Status::errorf("sequence of {} tokens exceeds max_position_embeddings {}", end,
                            cfg_.max_position_embeddings);
    }
    DSV3_TRY(c.cache->reserve(end));
    N += c.n_tokens;
  }
  positions_.resize(size_t(N));
  int64_t row = 0;
  for (const auto& c : batch) {
    for (int64_t i = 0; i < c.n_tokens; ++i) positions_[size_t(row++)] = c.cache->length() + i;
  }
  rope_.compute(positions_.data(), N);
  return Status::ok();
}

void Transformer::embed(float* x, std::span<const SeqChunk> batch, const WeightMatrix& table) {
  int64_t row = 0;
  for (const auto& c : batch) {
    for (int64_t i = 0; i < c.n_tokens; ++i) kernels::dequantize_row(x + (row++) * cfg_.dim, table, c.tokens[i]);
  }
}

void Transformer::block_forward(float* x, int64_t N, const LayerWeights& layer, std::span<const SeqChunk> batch,
                                int64_t cache_layer, AttentionPath path) {
  const int64_t D = cfg_.dim;
  const float eps = float(cfg_.rms_norm_eps);
  float* xn = grow(xn_, N * D);
  float* y = grow(y_, N * D);
  kernels::rmsnorm_forward(xn, nullptr, x, layer.attn_norm.data(), N, D, eps);
  mla_.forward(y, xn, layer.attn, batch, cache_layer, rope_.cos(), rope_.sin(), path);
  for (int64_t i = 0; i < N * D; ++i) x[i] += y[i];
  kernels::rmsnorm_forward(xn, nullptr, x, layer.ffn_norm.data(), N, D, eps);
  if (layer.is_moe) {
    moe_forward(y, xn, N, layer.moe, router_, *dispatcher_, moe_scratch_);
  } else {
    mlp_forward(y, xn, N, layer.mlp, mlp_scratch_);
  }
  for (int64_t i = 0; i < N * D; ++i) x[i] += y[i];
}

void Transformer::head_forward(float* logits, const float* h, std::span<const SeqChunk> batch,
                               const WeightMatrix& head, bool all_logits) {
  int64_t N = 0;
  for (const auto& c : batch) N += c.n_tokens;
  if (all_logits) {
    kernels::matmul(logits, h, head, N);
    return;
  }
  // Only each chunk's last token: gather those rows, one product.
  const int64_t D = cfg_.dim;
  float* rows = grow(gather_, int64_t(batch.size()) * D);
  int64_t end = 0, i = 0;
  for (const auto& c : batch) {
    end += c.n_tokens;
    std::memcpy(rows + (i++) * D, h + (end - 1) * D, size_t(D) * sizeof(float));
  }
  kernels::matmul(logits, rows, head, int64_t(batch.size()));
}

Status Transformer::forward(std::span<const SeqChunk> batch, float* logits, const ForwardOptions& opt) {
  int64_t N = 0;
  DSV3_TRY(check_batch(batch, N));
  const int64_t D = cfg_.dim;
  float* x = grow(x_, N * D);
  embed(x, batch, w_.embed);
  for (int64_t l = 0; l < cfg_.n_layers; ++l) block_forward(x, N, w_.layers[size_t(l)], batch, l, opt.attention);
  for (const auto& c : batch) c.cache->set_length(c.cache->length() + c.n_tokens);
  float* h = grow(hidden_, N * D);
  kernels::rmsnorm_forward(h, nullptr, x, w_.norm.data(), N, D, float(cfg_.rms_norm_eps));
  head_forward(logits, h, batch, w_.head, opt.all_logits);
  return Status::ok();
}

Status Transformer::mtp_forward(int64_t k, std::span<const SeqChunk> batch, const float* h_prev, float* logits,
                                const ForwardOptions& opt) {
  if (k < 0 || k >= cfg_.n_mtp_layers) return Status::errorf("the model has no MTP module {}", k);
  int64_t N = 0;
  DSV3_TRY(check_batch(batch, N));
  const int64_t D = cfg_.dim;
  const float eps = float(cfg_.rms_norm_eps);
  const LayerWeights& layer = w_.mtp_layers[size_t(k)];
  const MtpWeights& m = layer.mtp;
  // z = eh_proj · [enorm(Emb(next)) ; hnorm(h_prev)]: embedding first, as in the released weights.
  float* cat = grow(cat_, N * 2 * D);
  float* x = grow(x_, N * D);
  embed(x, batch, m.embed.empty() ? w_.embed : m.embed);
  kernels::rmsnorm_forward(cat, 2 * D, nullptr, x, D, m.enorm.data(), N, D, eps);
  kernels::rmsnorm_forward(cat + D, 2 * D, nullptr, h_prev, D, m.hnorm.data(), N, D, eps);
  kernels::matmul(x, cat, m.eh_proj, N);
  block_forward(x, N, layer, batch, k, opt.attention);
  for (const auto& c : batch) c.cache->set_length(c.cache->length() + c.n_tokens);
  float* h = grow(mtp_hidden_, N * D);
  kernels::rmsnorm_forward(h, nullptr, x, m.head_norm.data(), N, D, eps);
  head_forward(logits, h, batch, m.head.empty() ? w_.head : m.head, opt.all_logits);
  return Status::ok();
}

}  // namespace dsv3
