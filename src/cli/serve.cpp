// `dsv3 serve`: the OpenAI-compatible HTTP server with continuous batching and the chat page.
//
//   dsv3 serve [--model DIR] [--host 127.0.0.1] [--port 8080] [--kv-cache-mb 256] [--max-queue 64]
//              [--max-batch 16] [--api-key KEY | env DSV3_API_KEY] ...
//
// Without --model it serves assets/default-model/. SIGTERM or SIGINT: stop taking requests
// (503), let running ones finish for up to --shutdown-grace seconds, cancel the rest, exit 0.
//
// Development option (hidden from --help; used by tests and benchmarks): --random-config FILE
// serves random weights for a config.json, with the tokenizer given by --tokenizer.
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "cli/command.h"
#include "cli/model_options.h"
#include "model/config.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "server/engine.h"
#include "server/http.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {
namespace {


struct ServeOptions {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string model_name = "dsv3";
  std::string api_key;
  std::string tokenizer;
  std::string random_config;
  uint64_t random_seed = 1;
  int64_t kv_cache_mb = 256;
  int64_t page_size = 16;
  int64_t max_queue = 64;
  int64_t max_batch = 16;
  int64_t prefill_chunk = 256;
  int64_t default_max_tokens = 256;
  int64_t max_body_kb = 1024;
  int http_threads = 64;
  double shutdown_grace = 10.0;
};

// Weights and config behind the engine: a checkpoint, or random weights (development).
struct ModelSource {
  LoadedModel loaded;
  std::unique_ptr<RandomWeights> random;
  ModelConfig random_config;
  const ModelConfig& config() const { return random ? random_config : loaded.config; }
  const ModelWeights& weights() const { return random ? random->weights() : loaded.weights; }
};

Result<std::unique_ptr<ModelSource>> open_model(const ServeOptions& o, std::string& tokenizer_path) {
  auto src = std::make_unique<ModelSource>();
  if (!o.random_config.empty()) {
    auto cfg = load_model_config(o.random_config);
    DSV3_TRY(cfg);
    src->random_config = *cfg;
    RandomWeightsOptions ro;
    ro.dtype = cfg->fp8_weights ? DType::F8_E4M3 : DType::BF16;
    ro.seed = o.random_seed;
    src->random = std::make_unique<RandomWeights>(src->random_config, ro);
    if (tokenizer_path.empty()) return Status::error("--random-config needs --tokenizer PATH");
    return src;
  }
  auto dir = resolve_model_dir(o.model);
  DSV3_TRY(dir);
  auto loaded = load_model(*dir);
  DSV3_TRY(loaded);
  src->loaded = std::move(*loaded);
  if (tokenizer_path.empty()) tokenizer_path = *dir;
  return src;
}

int run_serve(ServeOptions o) {
  if (o.api_key.empty()) {
    if (const char* env = std::getenv("DSV3_API_KEY")) o.api_key = env;
  }
  // Signals are taken by one waiting thread; every thread started below inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a vanished client must not kill the server

  std::string tokenizer_path = o.tokenizer;
  // Opened on a thread that ends here: OpenMP keeps a team of workers for every thread that ever
  // ran a parallel region (random weights are generated in parallel), and once libgomp manages
  // more threads than there are CPUs it stops spinning between regions and sleeps instead, which
  // costs a futex wake-up per region (on 2 cores, 2-thread decode ran slower than 1-thread).
  // The engine thread must be the only thread with a team.
  std::optional<Result<std::unique_ptr<ModelSource>>> opened;
  std::thread([&] { opened.emplace(open_model(o, tokenizer_path)); }).join();
  auto& model = *opened;
  if (!model.is_ok()) return fail("serve", model.message());
  auto tokenizer = Tokenizer::load(tokenizer_path);
  if (!tokenizer.is_ok()) return fail("serve", "tokenizer: " + tokenizer.message());
  const ModelSource& src = **model;

  server::Metrics metrics;
  server::EngineOptions eo;
  eo.kv_cache_mb = o.kv_cache_mb;
  eo.page_size = o.page_size;
  eo.max_queue = o.max_queue;
  eo.max_batch = o.max_batch;
  eo.prefill_chunk = o.prefill_chunk;
  server::Engine engine(src.config(), src.weights(), *tokenizer, eo, metrics);

  server::HttpOptions ho;
  ho.model_name = o.model_name;
  ho.api_key = o.api_key;
  ho.max_body_bytes = size_t(o.max_body_kb) * 1024;
  ho.threads = o.http_threads;
  ho.default_max_tokens = o.default_max_tokens;
  server::HttpServer http(engine, metrics, ho);
  auto port = http.bind(o.host, o.port);
  if (!port.is_ok()) return fail("serve", port.message());
  std::printf("dsv3 serve: listening on http://%s:%d (model '%s', context %lld, KV cache %lld MB%s)\n", o.host.c_str(),
              *port, o.model_name.c_str(), (long long)engine.context_length(), (long long)o.kv_cache_mb,
              o.api_key.empty() ? "" : ", API key required");
  std::fflush(stdout);

  std::atomic<bool> serving_done{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (serving_done) return;
    std::fprintf(stderr, "dsv3 serve: signal %d: draining\n", sig);
    http.begin_drain();
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration<double>(o.shutdown_grace);
    // Done = the engine has nothing left and every response has been written to the end.
    auto done = [&] { return engine.idle() && http.in_flight() == 0; };
    while (!done() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    engine.cancel_all();
    const auto cancel_deadline = Clock::now() + std::chrono::seconds(2);
    while (!done() && Clock::now() < cancel_deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    http.stop();
  });
  http.serve();
  serving_done = true;
  pthread_kill(signal_thread.native_handle(), SIGTERM);  // wakes the waiter if serve() ended on its own
  signal_thread.join();
  engine.stop();
  std::fprintf(stderr, "dsv3 serve: stopped\n");
  return 0;
}

RunFn setup_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  app.add_option("--model", o->model, "model directory (config.json, safetensors, tokenizer.json); default assets/default-model");
  app.add_option("--host", o->host, "address to listen on (loopback by default)")->capture_default_str();
  app.add_option("--port", o->port, "port (0: any free port)")->capture_default_str();
  app.add_option("--model-name", o->model_name, "model id reported by /v1/models and expected in requests")
      ->capture_default_str();
  app.add_option("--api-key", o->api_key, "require 'Authorization: Bearer KEY' on /v1 routes (or env DSV3_API_KEY)");
  app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or its directory (default: the model directory)");
  app.add_option("--kv-cache-mb", o->kv_cache_mb, "size of the latent KV cache pool")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--page-size", o->page_size, "tokens per KV cache page")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--max-queue", o->max_queue, "requests waiting for a slot before 429")->capture_default_str()->check(CLI::Range(0, 1 << 20));
  app.add_option("--max-batch", o->max_batch, "sequences decoded together")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--prefill-chunk", o->prefill_chunk, "prompt tokens per sequence per step")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--default-max-tokens", o->default_max_tokens, "max_tokens when a request gives none")->capture_default_str()->check(CLI::Range(1, 1 << 24));
  app.add_option("--max-body-kb", o->max_body_kb, "largest request body accepted (413 beyond)")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--http-threads", o->http_threads, "connections served at once")->capture_default_str()->check(CLI::Range(2, 4096));
  app.add_option("--shutdown-grace", o->shutdown_grace, "seconds running requests get to finish after SIGTERM")->capture_default_str();
  app.add_option("--random-config", o->random_config, "development: random weights for this config.json")->group("");
  app.add_option("--random-seed", o->random_seed, "development: seed of the random weights")->group("");
  return [o] { return run_serve(*o); };
}

DSV3_COMMAND("serve", "serve a model over an OpenAI-compatible HTTP API with a web chat page", setup_serve);

}  // namespace
}  // namespace dsv3::cli
