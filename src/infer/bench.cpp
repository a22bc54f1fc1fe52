#include "infer/bench.h"

#include <algorithm>
#include <deque>
#include <vector>

#include "core/parallel_for.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/membw.h"
#include "model/moe.h"
#include "model/random_weights.h"
#include "model/transformer.h"

namespace dsv3 {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int64_t mlp_bytes(const MlpWeights& m) { return m.w1.bytes() + m.w2.bytes() + m.w3.bytes(); }

// Weight bytes of a decode step of `batch` tokens except the routed experts, read off the actual
// weights (so scales and dtypes are exact), and the bytes of one routed expert.
struct StepWeights {
  double fixed = 0;
  double per_expert = 0;
};

StepWeights step_weight_bytes(const ModelConfig& cfg, const ModelWeights& w, int64_t batch) {
  StepWeights s;
  s.fixed = double(w.head.bytes()) + double(batch) * double(w.embed.bytes()) / double(cfg.vocab_size);
  for (const auto& L : w.layers) {
    const auto& a = L.attn;
    for (const auto* m : {&a.wq, &a.wq_a, &a.wq_b, &a.wkv_a, &a.wkv_b, &a.wo}) s.fixed += double(m->bytes());
    if (!L.is_moe) {
      s.fixed += double(mlp_bytes(L.mlp));
      continue;
    }
    s.fixed += double(L.moe.gate.bytes());
    if (L.moe.has_shared) s.fixed += double(mlp_bytes(L.moe.shared));
    s.per_expert = double(mlp_bytes(L.moe.experts.front()));  // all experts have one shape
  }
  return s;
}

// The local dispatcher, counting the distinct routed experts of every MoE call while `counting`:
// the experts a step streams are measured rather than assumed.
class CountingDispatcher final : public MoeDispatcher {
 public:
  void routed_experts(float* y, const float* x, int64_t N, const Routing& routing, const MoeWeights& w) override {
    inner_.routed_experts(y, x, N, routing, w);
    if (!counting) return;
    for (int64_t c : inner_.last_counts()) distinct += c > 0 ? 1 : 0;
    ++calls;
  }

  bool counting = false;
  int64_t distinct = 0, calls = 0;

 private:
  LocalMoeDispatcher inner_;
};

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
  if (opt.batch < 1 || opt.batch > 64) return Status::error("--batch must be between 1 and 64");
  if (opt.prompt + opt.gen > cfg.max_position_embeddings) {
    return Status::errorf("prompt + gen = {} exceeds max_position_embeddings {}", opt.prompt + opt.gen,
                          cfg.max_position_embeddings);
  }
  BenchResult res;
  res.threads = num_threads();
  RandomWeights rw(cfg, {.dtype = opt.dtype, .seed = opt.seed, .head_dtype = opt.head_dtype});
  CountingDispatcher dispatcher;
  Transformer model(cfg, rw.weights(), &dispatcher);
  const int64_t B = opt.batch, total = opt.prompt + opt.gen, vocab = cfg.vocab_size;
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 64, B * ((total + 63) / 64));
  // One random prompt per sequence, so that their tokens route independently.
  std::vector<int32_t> prompts(size_t(B * opt.prompt));
  Rng rng(opt.seed, 7);
  for (auto& t : prompts) t = int32_t(rng.next_bits() % uint64_t(vocab));
  std::vector<float> logits(size_t(B * vocab));
  std::vector<int32_t> next(static_cast<size_t>(B));
  std::vector<SeqChunk> steps(static_cast<size_t>(B));

  std::vector<double> prefill_s, decode_s;
  for (int rep = 0; rep < opt.repeats; ++rep) {
    std::deque<SequenceCache> caches;  // not movable: a deque builds them in place
    for (int64_t b = 0; b < B; ++b) {
      caches.emplace_back(pool);
      DSV3_TRY(caches.back().reserve(total));
    }
    // Prefill is timed on the first sequence alone (one chunk of `prompt` tokens).
    for (int64_t b = 0; b < B; ++b) {
      SeqChunk chunk{&caches[size_t(b)], prompts.data() + b * opt.prompt, opt.prompt};
      Timer t;
      DSV3_TRY(model.forward({&chunk, 1}, logits.data() + b * vocab));
      if (b == 0) prefill_s.push_back(t.seconds());
    }
    dispatcher.counting = true;
    Timer t;
    for (int64_t g = 0; g < opt.gen; ++g) {
      for (int64_t b = 0; b < B; ++b) {
        const float* row = logits.data() + b * vocab;
        next[size_t(b)] = int32_t(std::max_element(row, row + vocab) - row);
        steps[size_t(b)] = SeqChunk{&caches[size_t(b)], &next[size_t(b)], 1};
      }
      DSV3_TRY(model.forward(steps, logits.data()));
    }
    decode_s.push_back(t.seconds());
    dispatcher.counting = false;
  }
  res.prefill_tok_s = double(opt.prompt) / median(prefill_s);
  res.decode_tok_s = double(B * opt.gen) / median(decode_s);
  res.bandwidth_gb_s = kernels::measure_read_bandwidth(opt.bandwidth_bytes, res.threads, 5).gb_per_s;
  const StepWeights sw = step_weight_bytes(cfg, rw.weights(), B);
  const int64_t decode_steps = opt.gen * opt.repeats;
  res.routed_experts_per_layer =
      dispatcher.calls > 0 ? double(dispatcher.distinct) / double(dispatcher.calls) : 0.0;
  res.weight_bytes_per_step = sw.fixed + sw.per_expert * double(dispatcher.distinct) / double(decode_steps);
  const double mean_pos = double(opt.prompt) + double(opt.gen - 1) / 2.0;
  res.kv_bytes_per_step = double(B) * double(pool.bytes_per_token()) * mean_pos;
  res.bytes_per_step = res.weight_bytes_per_step + res.kv_bytes_per_step;
  res.weight_bytes_per_token = res.weight_bytes_per_step / double(B);
  res.kv_bytes_per_token = res.kv_bytes_per_step / double(B);
  res.bytes_per_token = res.bytes_per_step / double(B);
  res.decode_bound_tok_s = res.bandwidth_gb_s * 1e9 / res.bytes_per_token;
  res.prefill_gflop_per_token = forward_flops_per_token(cfg, opt.prompt / 2) / 1e9;
  return res;
}

}  // namespace dsv3
