// `dsv3 generate`: streams the continuation of a prompt, then prints prefill and decode speed.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/command.h"
#include "cli/model_options.h"
#include "infer/session.h"
#include "tokenizer/chat_template.h"

namespace dsv3::cli {
namespace {

struct GenerateOptions {
  ModelOptions model;
  SamplerConfig sampler;
  std::string prompt;
  bool chat = false, no_bos = false, quiet = false;
};

int run_generate(const GenerateOptions& o) {
  std::string prompt = o.prompt;
  if (prompt.empty()) prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  if (prompt.empty()) return fail("generate", "empty prompt (use --prompt or standard input)");
  auto runner = load_runner(o.model);
  if (!runner) return fail("generate", runner.message());
  const Tokenizer& tok = runner->tokenizer;
  std::vector<int32_t> ids;
  if (o.chat) {
    ids = tok.encode(render_chat({{"user", prompt, {}}}, true, ChatTemplateTokens::for_tokenizer(tok)));
  } else {
    ids = tok.encode(prompt, !o.no_bos && tok.bos_id() >= 0);
  }
  Session session(*runner->model, tok, runner->context);
  if (Status st = session.feed(ids); !st) return fail("generate", st.message());
  auto result = session.generate(o.sampler, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  if (!result) return fail("generate", result.message());
  std::fputc('\n', stdout);
  if (!o.quiet) {
    const double n = double(result->tokens.size());
    std::fprintf(stderr, "prefill: %zu tokens in %.3f s (%.1f tok/s); decode: %zu tokens in %.3f s (%.1f tok/s)\n",
                 ids.size(), session.prefill_seconds(), double(ids.size()) / session.prefill_seconds(),
                 result->tokens.size(), result->decode_seconds, n / result->decode_seconds);
  }
  return 0;
}

RunFn setup_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  add_model_options(app, o->model);
  add_sampler_options(app, o->sampler);
  app.add_option("--prompt", o->prompt, "prompt text (default: standard input)");
  app.add_flag("--chat", o->chat, "wrap the prompt as a user turn of the chat template");
  app.add_flag("--no-bos", o->no_bos, "do not prepend BOS to a plain prompt");
  app.add_flag("--quiet", o->quiet, "do not print the speed line");
  return [o] { return run_generate(*o); };
}

DSV3_COMMAND("generate", "stream the continuation of a prompt", setup_generate);

}  // namespace
}  // namespace dsv3::cli
