// Training step throughput: forward + backward of TrainModel (f32) on the tiny-train shape
// (bench/configs/tiny-train.json: dim 256, 6 layers (1 dense), 16 experts top-2 + 1 shared,
// MLA 4 heads, vocab 8192, one MTP module), batch 8 x 256. Reports tokens/s.
//   ./build/bench/dsv3_bench --benchmark_filter=TrainStep --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/rng.h"
#include "model/config.h"
#include "train/train_model.h"

namespace dsv3 {
namespace {

void BM_TrainStep(benchmark::State& state) {
  const int64_t B = 8, T = 256;
  // The fixed benchmark shape, read from the same file every training benchmark uses.
  auto loaded = load_model_config(std::string(DSV3_SOURCE_DIR) + "/bench/configs/tiny-train.json");
  if (!loaded) {
    state.SkipWithError(loaded.message().c_str());
    return;
  }
  const ModelConfig cfg = *loaded;
  TrainModel model(cfg, {.batch = B, .seq_len = T, .mtp_weight = 0.3, .balance_alpha = 1e-4,
                         .recompute = state.range(0) != 0});
  model.init(1);
  Rng rng(2);
  std::vector<int32_t> tokens(size_t(B * (T + 1)));
  for (auto& t : tokens) t = int32_t(rng.next_bits() % uint64_t(cfg.vocab_size));
  // One untimed step first: it touches the freshly allocated activation slab (~120k page faults,
  // several percent of a step), which a training run pays once, not per step.
  model.params().zero_grad();
  benchmark::DoNotOptimize(model.forward_backward({tokens.data(), B, T}));
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
