#include "cli/model_options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>

#include "cli/args.h"

namespace dsv3::cli {
namespace fs = std::filesystem;

void add_model_options(CLI::App& app, ModelOptions& o) {
  app.add_option("--model", o.model, "model directory (default: the shipped default model)");
  app.add_option("--tokenizer", o.tokenizer, "tokenizer.json or its directory (default: the model's)");
  app.add_option("--threads", o.threads, "threads (default: all cores)");
  app.add_option("--context", o.context, "KV-cache capacity in tokens (default: the model's maximum)");
}

void add_sampler_options(CLI::App& app, SamplerConfig& s) {
  s.temperature = 0.7f;
  app.add_option("--temperature", s.temperature, "sampling temperature; 0 = greedy")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", s.top_k, "keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", s.top_p, "nucleus sampling mass (1 = off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--min-p", s.min_p, "drop tokens below min_p * p_max (0 = off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--repetition-penalty", s.repetition_penalty, "HF repetition penalty (1 = off)")
      ->check(CLI::PositiveNumber);
  app.add_option("--presence-penalty", s.presence_penalty, "OpenAI presence penalty");
  app.add_option("--frequency-penalty", s.frequency_penalty, "OpenAI frequency penalty");
  app.add_option("--seed", s.seed, "sampling seed: the same seed gives the same text");
  app.add_option("--max-tokens", s.max_new_tokens, "maximum new tokens");
  app.add_option("--stop", s.stop, "stop string (repeatable)");
}

Result<std::string> resolve_model_dir(const std::string& requested) {
  if (!requested.empty()) return requested;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("DSV3_DEFAULT_MODEL"); env != nullptr && *env) {
    candidates.push_back(env);
  } else {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back(exe.parent_path().parent_path() / "assets" / "default-model");
    candidates.push_back(fs::current_path() / "assets" / "default-model");
  }
  for (const auto& c : candidates) {
    if (fs::exists(c / "config.json")) return c.string();
  }
  std::string looked;
  for (const auto& c : candidates) looked += (looked.empty() ? "" : ", ") + c.string();
  return Status::errorf(
      "no --model given and no default model found (looked in {}; the default model lives in "
      "assets/default-model of the repository; set DSV3_DEFAULT_MODEL or pass --model DIR)",
      looked);
}

Result<LoadedRunner> load_runner(const ModelOptions& o) {
  auto dir = resolve_model_dir(o.model);
  if (!dir) return dir.status();
  auto loaded = load_model(*dir);
  if (!loaded) return loaded.status();
  auto tokenizer = Tokenizer::load(o.tokenizer.empty() ? *dir : o.tokenizer);
  if (!tokenizer) {
    return Status::errorf("{}{}", tokenizer.message(),
                          o.tokenizer.empty() ? " (the model directory has no usable tokenizer: pass --tokenizer)" : "");
  }
  apply_threads(o.threads);
  LoadedRunner r{std::make_unique<LoadedModel>(std::move(loaded).value()), std::move(tokenizer).value(), nullptr, 0};
  const ModelConfig& cfg = r.loaded->config;
  if (int64_t(r.tokenizer.vocab_size()) > cfg.vocab_size) {
    return Status::errorf("the tokenizer has {} tokens but the model only {} embedding rows", r.tokenizer.vocab_size(),
                          cfg.vocab_size);
  }
  r.model = std::make_unique<Transformer>(cfg, r.loaded->weights);
  r.context = o.context > 0 ? std::min(o.context, cfg.max_position_embeddings) : cfg.max_position_embeddings;
  return r;
}

}  // namespace dsv3::cli
