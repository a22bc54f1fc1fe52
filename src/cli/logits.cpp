// `dsv3 logits`: the float32 logits of every position of a token sequence, as a NumPy .npy array
// (T, vocab) — from one full-sequence forward, or token by token through the latent KV cache.
#include <memory>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "io/npy.h"
#include "model/loader.h"
#include "model/transformer.h"

namespace dsv3::cli {
namespace {

struct LogitsOptions {
  std::string model, tokens, out, mtp_out, attention = "absorbed";
  bool incremental = false;
  int threads = 0;
};

int run_logits(const LogitsOptions& o) {
  auto tokens = parse_token_list(o.tokens);
  if (!tokens) return fail("logits", tokens.message());
  auto loaded = load_model(o.model);
  if (!loaded) return fail("logits", loaded.message());
  apply_threads(o.threads);
  const ModelConfig& cfg = loaded->config;
  Transformer model(cfg, loaded->weights);
  const int64_t T = int64_t(tokens->size()), V = cfg.vocab_size;
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 64, (T + 63) / 64);
  SequenceCache cache(pool);
  std::vector<float> logits(size_t(T * V));
  ForwardOptions fo{o.attention == "naive" ? AttentionPath::Naive : AttentionPath::Absorbed, true};
  std::vector<float> hidden(size_t(T * cfg.dim));
  for (int64_t t = 0, step = o.incremental ? 1 : T; t < T; t += step) {
    SeqChunk chunk{&cache, tokens->data() + t, step};
    Status st = model.forward({&chunk, 1}, logits.data() + t * V, fo);
    if (!st) return fail("logits", st.message());
    std::copy(model.final_hidden(), model.final_hidden() + step * cfg.dim, hidden.begin() + t * cfg.dim);
  }
  const int64_t shape[2] = {T, V};
  if (Status st = write_npy_f32(o.out, logits, shape); !st) return fail("logits", st.message());

  if (!o.mtp_out.empty()) {
    // MTP module 0 at position i reads (h_i, Emb(t_{i+1})) and predicts t_{i+2}: T-1 rows.
    if (cfg.n_mtp_layers == 0) return fail("logits", "--mtp-out: the model has no MTP module");
    if (T < 2) return fail("logits", "--mtp-out needs at least two tokens");
    KvPool mtp_pool(model.mtp_cache_layers(), model.cache_row_dim(), 64, (T + 63) / 64);
    SequenceCache mtp_cache(mtp_pool);
    std::vector<float> mtp_logits(size_t((T - 1) * V));
    SeqChunk chunk{&mtp_cache, tokens->data() + 1, T - 1};
    Status st = model.mtp_forward(0, {&chunk, 1}, hidden.data(), mtp_logits.data(), fo);
    if (!st) return fail("logits", st.message());
    const int64_t mshape[2] = {T - 1, V};
    if (Status w = write_npy_f32(o.mtp_out, mtp_logits, mshape); !w) return fail("logits", w.message());
  }
  return 0;
}

RunFn setup_logits(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  app.add_option("--model", o->model, "model directory (config.json + safetensors)")->required();
  app.add_option("--tokens", o->tokens, "comma-separated token ids, e.g. 0,17,42")->required();
  app.add_option("--out", o->out, "output .npy file: float32 logits (T, vocab)")->required();
  app.add_flag("--incremental", o->incremental, "decode token by token through the KV cache");
  app.add_option("--attention", o->attention, "attention path: absorbed (default) or naive")
      ->check(CLI::IsMember({"absorbed", "naive"}));
  app.add_option("--mtp-out", o->mtp_out, "also write MTP module 0 logits (T-1, vocab) to this .npy");
  app.add_option("--threads", o->threads, "threads (default: all cores)");
  return [o] { return run_logits(*o); };
}

DSV3_COMMAND("logits", "write the logits of every position of a token sequence as .npy", setup_logits);

}  // namespace
}  // namespace dsv3::cli
