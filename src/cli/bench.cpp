// `dsv3 bench`: prefill and decode speed of a random-weight model of a config, the machine's read
// bandwidth measured in the same run, and decode speed as a fraction of the bandwidth bound.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/command.h"
#include "infer/bench.h"
#include "kernels/dispatch.h"

namespace dsv3::cli {
namespace {

struct BenchCliOptions {
  std::string config, dtype = "fp8", head_dtype;  // head_dtype empty: same as dtype
  int threads = 0;
  int64_t bandwidth_mib = 1024;
  BenchOptions bench;
  bool json = false;
};

int run_bench_cli(BenchCliOptions& o) {
  auto cfg = load_model_config(o.config);
  if (!cfg) return fail("bench", cfg.message());
  auto parse = [](const std::string& d) {
    return d == "fp8" ? DType::F8_E4M3 : d == "bf16" ? DType::BF16 : DType::F32;
  };
  if (o.head_dtype.empty()) o.head_dtype = o.dtype;
  o.bench.dtype = parse(o.dtype);
  o.bench.head_dtype = parse(o.head_dtype);
  o.bench.bandwidth_bytes = o.bandwidth_mib << 20;
  apply_threads(o.threads);
  auto r = run_bench(*cfg, o.bench);
  if (!r) return fail("bench", r.message());
  if (o.json) {
    nlohmann::json j = {{"config", o.config},
                        {"dtype", o.dtype},
                        {"head_dtype", o.head_dtype},
                        {"threads", r->threads},
                        {"kernels", std::string(kernels::kernel_path_name(kernels::kernel_path()))},
                        {"prompt", o.bench.prompt},
                        {"gen", o.bench.gen},
                        {"batch", o.bench.batch},
                        {"prefill_tok_s", r->prefill_tok_s},
                        {"decode_tok_s", r->decode_tok_s},
                        {"bandwidth_gb_s", r->bandwidth_gb_s},
                        {"bytes_per_token", r->bytes_per_token},
                        {"weight_bytes_per_token", r->weight_bytes_per_token},
                        {"kv_bytes_per_token", r->kv_bytes_per_token},
                        {"bytes_per_step", r->bytes_per_step},
                        {"routed_experts_per_layer", r->routed_experts_per_layer},
                        {"decode_bound_tok_s", r->decode_bound_tok_s},
                        {"decode_fraction_of_bound", r->decode_tok_s / r->decode_bound_tok_s},
                        {"prefill_gflop_per_token", r->prefill_gflop_per_token},
                        {"prefill_gflop_s", r->prefill_tok_s * r->prefill_gflop_per_token}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("config {}  dtype {} (head {})  threads {}  kernels {}  prompt {}  gen {}  batch {}\n", o.config,
             o.dtype, o.head_dtype, r->threads, kernels::kernel_path_name(kernels::kernel_path()), o.bench.prompt,
             o.bench.gen, o.bench.batch);
  fmt::print("prefill  {:9.1f} tok/s   ({:.1f} GFLOP/s at {:.3f} GFLOP/token)\n", r->prefill_tok_s,
             r->prefill_tok_s * r->prefill_gflop_per_token, r->prefill_gflop_per_token);
  fmt::print("decode   {:9.1f} tok/s{}\n", r->decode_tok_s,
             o.bench.batch > 1 ? fmt::format(" ({} sequences together)", o.bench.batch) : std::string());
  fmt::print("memory read bandwidth {:.1f} GB/s; bytes per decoded token {:.1f} MB (weights {:.1f} MB, KV {:.2f} MB)\n",
             r->bandwidth_gb_s, r->bytes_per_token / 1e6, r->weight_bytes_per_token / 1e6,
             r->kv_bytes_per_token / 1e6);
  fmt::print("bytes per decode step {:.1f} MB; routed experts per MoE layer and step {:.2f}\n", r->bytes_per_step / 1e6,
             r->routed_experts_per_layer);
  fmt::print("decode bound {:.1f} tok/s; achieved / bound = {:.1f}%\n", r->decode_bound_tok_s,
             100.0 * r->decode_tok_s / r->decode_bound_tok_s);
  return 0;
}

RunFn setup_bench(CLI::App& app) {
  auto o = std::make_shared<BenchCliOptions>();
  app.add_option("--config", o->config, "model config.json (e.g. bench-small.json)")->required();
  app.add_option("--dtype", o->dtype, "weight storage: fp8 (E4M3 + 128x128 scales), bf16, f32")
      ->check(CLI::IsMember({"fp8", "bf16", "f32"}));
  app.add_option("--head-dtype", o->head_dtype,
                 "output head storage (default: as --dtype; DeepSeek's FP8 checkpoints keep it bf16)")
      ->check(CLI::IsMember({"fp8", "bf16", "f32"}));
  app.add_option("--threads", o->threads, "threads (default: all cores)");
  app.add_option("--prompt", o->bench.prompt, "prompt tokens (prefill)");
  app.add_option("--gen", o->bench.gen, "generated tokens (decode)");
  app.add_option("--batch", o->bench.batch, "sequences decoded together, one token each per step (1-64)");
  app.add_option("--repeats", o->bench.repeats, "runs to take the median of")->check(CLI::PositiveNumber);
  app.add_option("--seed", o->bench.seed, "weights and prompt seed");
  app.add_option("--bandwidth-mib", o->bandwidth_mib, "array size of the read-bandwidth measurement (well above L3)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_flag("--json", o->json, "print one JSON object");
  return [o] { return run_bench_cli(*o); };
}

DSV3_COMMAND("bench", "inference speed on random weights vs the memory-bandwidth bound", setup_bench);

}  // namespace
}  // namespace dsv3::cli
