// `dsv3 fp8 study`: reproduces V3 §3.3.2's measurement of limited tensor-core accumulation
// (~14 bits; "nearly 2%" maximum relative error at K = 4096) and of promotion every 128.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "kernels/fp8_study.h"

namespace dsv3::cli {
namespace {

struct StudyOpts {
  bool json = false;
  int mantissa_bits = 14;
  uint64_t seed = 0;
  std::string dist = "normal";
  bool align_with_accumulator = false;
  int64_t outputs = 16;
};

int run_study(const StudyOpts& o) {
  kernels::Fp8StudyOptions opt{.M = o.outputs,
                               .N = o.outputs,
                               .mantissa_bits = o.mantissa_bits,
                               .align_with_accumulator = o.align_with_accumulator,
                               .dist = o.dist == "uniform" ? kernels::StudyDist::kUniform : kernels::StudyDist::kNormal,
                               .seed = o.seed};
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  if (!o.json) {
    fmt::print("FP8 GEMM accumulation study: x ({0}, K) x W ({0}, K)^T, entries {1}, E4M3 1x128 / 128x128,\n"
               "accumulator {2} significant bits (truncating), groups of 32 aligned to their max exponent{3};\n"
               "relative error vs FP64 of the same quantized operands over {4} outputs\n\n",
               o.outputs, o.dist == "uniform" ? "U[0,1)" : "N(0,1)", o.mantissa_bits,
               o.align_with_accumulator ? " and the accumulator" : "", o.outputs * o.outputs);
    fmt::print("{:>6} | {:>12} {:>12} {:>12} | {:>12} {:>12} {:>12}\n", "K", "max unprom.", "mean unprom.",
               "frob unprom.", "max prom.", "mean prom.", "frob prom.");
  }
  for (int64_t K : {512, 1024, 2048, 4096, 8192, 16384}) {
    const kernels::Fp8StudyRow r = kernels::fp8_accumulation_study(K, opt);
    if (o.json) {
      rows.push_back({{"K", r.K},
                      {"mantissa_bits", r.mantissa_bits},
                      {"err_unpromoted", r.unpromoted.max_rel},
                      {"err_promoted", r.promoted.max_rel}});
    } else {
      fmt::print("{:>6} | {:>11.4f}% {:>11.4f}% {:>11.4f}% | {:>11.4f}% {:>11.4f}% {:>11.4f}%\n", K,
                 100 * r.unpromoted.max_rel, 100 * r.unpromoted.mean_rel, 100 * r.unpromoted.frob_rel,
                 100 * r.promoted.max_rel, 100 * r.promoted.mean_rel, 100 * r.promoted.frob_rel);
    }
  }
  if (o.json) fmt::print("{}\n", rows.dump());
  return 0;
}

RunFn setup_fp8(CLI::App& app) {
  app.require_subcommand(1);
  auto opts = std::make_shared<StudyOpts>();
  CLI::App* study = app.add_subcommand("study", "max relative error of limited FP8 accumulation, with and without promotion");
  study->add_flag("--json", opts->json, "print one JSON array of {K, mantissa_bits, err_unpromoted, err_promoted}");
  study->add_option("--mantissa-bits", opts->mantissa_bits, "significant bits of the accumulator (Hopper: ~14)")
      ->check(CLI::Range(2, 24));
  study->add_option("--seed", opts->seed, "random seed");
  study->add_option("--dist", opts->dist, "operand entries: normal = N(0,1), uniform = U[0,1)")
      ->check(CLI::IsMember({"normal", "uniform"}));
  study->add_flag("--align-with-accumulator", opts->align_with_accumulator,
                  "let the running accumulator join each group's exponent alignment");
  study->add_option("--outputs", opts->outputs, "M = N: the study measures M*N dot products per K")
      ->check(CLI::Range(1, 256));
  return [opts, study] {
    if (study->parsed()) return run_study(*opts);
    return fail("fp8", "unknown subcommand");
  };
}

DSV3_COMMAND("fp8", "FP8 numerics: `dsv3 fp8 study` (accumulation precision and promotion)", setup_fp8);

}  // namespace
}  // namespace dsv3::cli
