// The DeepSeek-V3 model forward (spec §2; official model.py Transformer):
//   h = Embed[tokens] → for each layer: h += MLA(attn_norm(h)); h += FFN(ffn_norm(h))
//   → norm → head, FFN = dense SwiGLU below first_k_dense_replace, MoE above,
// plus the multi-token-prediction modules (spec §4), each with its own layer of latent cache.
//
// A forward takes a batch of chunks (new tokens of several sequences, each continuing its own
// cache), so prefill, token-by-token decode and continuous batching are the same call.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "model/gate.h"
#include "model/kv_cache.h"
#include "model/mla.h"
#include "model/moe.h"
#include "model/rope_table.h"
#include "model/weights.h"

namespace dsv3 {

struct ForwardOptions {
  AttentionPath attention = AttentionPath::Absorbed;
  // true: logits for every new token (N, vocab); false: only each chunk's last token (chunks, vocab).
  bool all_logits = false;
};

class Transformer {
 public:
  // The weights must outlive the Transformer. dispatcher: nullptr = LocalMoeDispatcher.
  Transformer(const ModelConfig& cfg, const ModelWeights& weights, MoeDispatcher* dispatcher = nullptr);

  const ModelConfig& config() const { return cfg_; }
  // Cache layers of the KvPool for the main model, and of the (separate) pool for the MTP
  // modules: an MTP module's sequence lags the main one by a token, so it has its own caches.
  int64_t cache_layers() const { return cfg_.n_layers; }
  int64_t mtp_cache_layers() const { return cfg_.n_mtp_layers; }
  int64_t cache_row_dim() const { return cfg_.kv_cache_dim(); }

  // Runs the main model over the batch; advances every chunk's cache length. Fails (before
  // touching any cache) on out-of-range token ids, positions past the model's maximum, or a
  // full cache pool.
  Status forward(std::span<const SeqChunk> batch, float* logits, const ForwardOptions& opt = {});

  // Final hidden states h^0 (after model.norm) of every token of the last forward(): (N, dim).
  const float* final_hidden() const { return hidden_.data(); }

  // MTP module k (0-based): for each row i of h_prev (N, dim) and the token that follows it,
  // z = eh_proj[enorm(Emb(next)) ; hnorm(h_prev)], one decoder layer over the module's own cache,
  // logits = head(shared_head.norm(h)). Chunks give the next tokens and the MTP caches (cache layer k);
  // h_prev rows follow chunk order.
  Status mtp_forward(int64_t k, std::span<const SeqChunk> batch, const float* h_prev, float* logits,
                     const ForwardOptions& opt = {});
  const float* mtp_hidden() const { return mtp_hidden_.data(); }

 private:
  Status check_batch(std::span<const SeqChunk> batch, int64_t& N);
  void embed(float* x, std::span<const SeqChunk> batch, const WeightMatrix& table);
  void block_forward(float* x, int64_t N, const LayerWeights& layer, std::span<const SeqChunk> batch,
                     int64_t cache_layer, AttentionPath path);
  void head_forward(float* logits, const float* h, std::span<const SeqChunk> batch, const WeightMatrix& head,
                    bool all_logits);

  const ModelConfig& cfg_;
  const ModelWeights& w_;
  RouterConfig router_;
  std::unique_ptr<LocalMoeDispatcher> local_dispatcher_;
  MoeDispatcher* dispatcher_;
  RopeTable rope_;
  Mla mla_;
  MlpScratch mlp_scratch_;
  MoeScratch moe_scratch_;
  std::vector<int64_t> positions_;
  std::vector<float> x_, xn_, y_, hidden_, mtp_hidden_, cat_, gather_;
};

}  // namespace dsv3
