#include "infer/bench.h"

#include <algorithm>
#include <vector>

#include "core/parallel_for.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/membw.h"
#include "model/random_weights.h"
#include "model/transformer.h"

namespace dsv3 {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int64_t mlp_bytes(const MlpWeights& m) { return m.w1.bytes() + m.w2.bytes() + m.w3.bytes(); }

// Weight bytes per decoded token, read off actual weights (so scales and dtypes are exact).
double weight_bytes_per_token(const ModelConfig& cfg, const ModelWeights& w) {
  double bytes = double(w.head.bytes()) + double(w.embed.bytes()) / double(cfg.vocab_size);
  for (const auto& L : w.layers) {
    const auto& a = L.attn;
    for (const auto* m : {&a.wq, &a.wq_a, &a.wq_b, &a.wkv_a, &a.wkv_b, &a.wo}) bytes += double(m->bytes());
    if (!L.is_moe) {
      bytes += double(mlp_bytes(L.mlp));
      continue;
    }
    bytes += double(L.moe.gate.bytes());
    if (L.moe.has_shared) bytes += double(mlp_bytes(L.moe.shared));
    // Experts all have the same shape: top-k of them.
    bytes += double(cfg.n_activated_experts) * double(mlp_bytes(L.moe.experts.front()));
  }
  return bytes;
}

}  // namespace

double forward_flops_per_token(const ModelConfig& cfg, int64_t context) {
  const double D = double(cfg.dim), H = double(cfg.n_heads), r = double(cfg.kv_lora_rank),
               dr = double(cfg.qk_rope_head_dim), dn = double(cfg.qk_nope_head_dim), dv = double(cfg.v_head_dim);
  const double dqk = dn + dr;
  double attn = cfg.q_lora_rank > 0 ? double(cfg.q_lora_rank) * (D + H * dqk) : H * dqk * D;
  attn += (r + dr) * D + H * (dn + dv) * r + D * H * dv;  // wkv_a, absorbed wkv_b, wo
  double params = 0;
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    params += attn;
    if (cfg.is_moe_layer(l)) {
      params += double(cfg.n_routed_experts) * D;
      params += 3.0 * D * double(cfg.moe_inter_dim) * double(cfg.n_activated_experts + cfg.n_shared_experts);
    } else {
      params += 3.0 * D * double(cfg.inter_dim);
    }
  }
  params += double(cfg.vocab_size) * D;
  // Attention core (absorbed): scores over (r + d_r), output over r, per head and context token.
  const double core = double(cfg.n_layers) * H * (2.0 * (r + dr) + 2.0 * r) * double(context);
  return 2.0 * params + core;
}

Result<BenchResult> run_bench(const ModelConfig& cfg, const BenchOptions& opt) {
  if (opt.prompt < 1 || opt.gen < 1) return Status::error("--prompt and --gen must be at least 1");
  if (opt.prompt + opt.gen > cfg.max_position_embeddings) {
    return Status::errorf("prompt + gen = {} exceeds max_position_embeddings {}", opt.prompt + opt.gen,
                          cfg.max_position_embeddings);
  }
  BenchResult res;
  res.threads = num_threads();
  RandomWeights rw(cfg, {.dtype = opt.dtype, .seed = opt.seed, .head_dtype = opt.head_dtype});
  Transformer model(cfg, rw.weights());
  const int64_t total = opt.prompt + opt.gen;
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 64, (total + 63) / 64);
  std::vector<int32_t> prompt(size_t(opt.prompt));
  Rng rng(opt.seed, 7);
  for (auto& t : prompt) t = int32_t(rng.next_bits() % uint64_t(cfg.vocab_size));
  std::vector<float> logits(size_t(cfg.vocab_size));

  std::vector<double> prefill_s, decode_s;
  for (int rep = 0; rep < opt.repeats; ++rep) {
    SequenceCache cache(pool);
    DSV3_TRY(cache.reserve(total));
    SeqChunk chunk{&cache, prompt.data(), opt.prompt};
    Timer t;
    DSV3_TRY(model.forward({&chunk, 1}, logits.data()));
    prefill_s.push_back(t.seconds());
    t.reset();
    for (int64_t g = 0; g < opt.gen; ++g) {
      int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      SeqChunk step{&cache, &next, 1};
      DSV3_TRY(model.forward({&step, 1}, logits.data()));
    }
    decode_s.push_back(t.seconds());
  }
  res.prefill_tok_s = double(opt.prompt) / median(prefill_s);
  res.decode_tok_s = double(opt.gen) / median(decode_s);
  res.bandwidth_gb_s = kernels::measure_read_bandwidth(opt.bandwidth_bytes, res.threads, 5).gb_per_s;
  res.weight_bytes_per_token = weight_bytes_per_token(cfg, rw.weights());
  const double mean_pos = double(opt.prompt) + double(opt.gen - 1) / 2.0;
  res.kv_bytes_per_token = double(pool.bytes_per_token()) * mean_pos;
  res.bytes_per_token = res.weight_bytes_per_token + res.kv_bytes_per_token;
  res.decode_bound_tok_s = res.bandwidth_gb_s * 1e9 / res.bytes_per_token;
  res.prefill_gflop_per_token = forward_flops_per_token(cfg, opt.prompt / 2) / 1e9;
  return res;
}

}  // namespace dsv3
