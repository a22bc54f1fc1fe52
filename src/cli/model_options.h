// Options shared by the commands that run a model on text (generate, chat): where the model and
// its tokenizer come from, threads, and the sampling settings.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "infer/sampler.h"
#include "model/loader.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

namespace CLI {
class App;
}

namespace dsv3::cli {

struct ModelOptions {
  std::string model;      // empty: the shipped default model
  std::string tokenizer;  // empty: the model directory's tokenizer files
  int threads = 0;
  int64_t context = 0;    // 0: max_position_embeddings
};

void add_model_options(CLI::App& app, ModelOptions& o);
void add_sampler_options(CLI::App& app, SamplerConfig& s);

// The model directory to use: --model, else $DSV3_DEFAULT_MODEL, else assets/default-model next
// to the binary's source tree or the working directory.
Result<std::string> resolve_model_dir(const std::string& requested);

// A loaded model with its tokenizer and a Transformer over it.
struct LoadedRunner {
  std::unique_ptr<LoadedModel> loaded;
  Tokenizer tokenizer;
  std::unique_ptr<Transformer> model;
  int64_t context = 0;
};
Result<LoadedRunner> load_runner(const ModelOptions& o);

}  // namespace dsv3::cli
