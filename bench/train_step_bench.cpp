// Training step throughput: forward + backward of TrainModel (f32) on the tiny-train shape
// (tests/golden/configs/tiny-train.json: dim 256, 6 layers (1 dense), 16 experts top-2 + 1 shared,
// MLA 4 heads, vocab 8192, one MTP module), batch 8 x 256. Reports tokens/s.
//   ./build/bench/dsv3_bench --benchmark_filter=TrainStep --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <vector>

#include "core/rng.h"
#include "model/config.h"
#include "train/train_model.h"

namespace dsv3 {
namespace {

ModelConfig tiny_train_config() {
  ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = 8192;
  c.dim = 256;
  c.inter_dim = 768;
  c.moe_inter_dim = 128;
  c.n_layers = 6;
  c.n_mtp_layers = 1;
  c.n_dense_layers = 1;
  c.n_heads = 4;
  c.q_lora_rank = 128;
  c.kv_lora_rank = 64;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 32;
  c.n_routed_experts = 16;
  c.n_shared_experts = 1;
  c.n_activated_experts = 2;
  c.n_expert_groups = 4;
  c.n_limited_groups = 2;
  c.route_scale = 2.5;
  c.max_position_embeddings = 1024;
  return c;
}

void BM_TrainStep(benchmark::State& state) {
  const int64_t B = 8, T = 256;
  const ModelConfig cfg = tiny_train_config();
  TrainModel model(cfg, {.batch = B, .seq_len = T, .mtp_weight = 0.3, .balance_alpha = 1e-4,
                         .recompute = state.range(0) != 0});
  model.init(1);
  Rng rng(2);
  std::vector<int32_t> tokens(size_t(B * (T + 1)));
  for (auto& t : tokens) t = int32_t(rng.next_bits() % uint64_t(cfg.vocab_size));
  for (auto _ : state) {
    model.params().zero_grad();
    benchmark::DoNotOptimize(model.forward_backward({tokens.data(), B, T}));
  }
  state.counters["tokens/s"] = benchmark::Counter(double(B * T) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["act_MB"] = double(model.activation_bytes()) / 1e6;
}
BENCHMARK(BM_TrainStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace dsv3
