// `dsv3 chat`: an interactive multi-turn conversation. The history stays in the KV cache: each
// turn feeds only its new tokens. /reset starts over, /exit (or end of input) quits, Ctrl-C stops
// the current answer and returns to the prompt.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/model_options.h"
#include "infer/session.h"
#include "tokenizer/chat_template.h"

namespace dsv3::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted.store(true); }

struct ChatOptions {
  ModelOptions model;
  SamplerConfig sampler;
  std::string system;
};

int run_chat(const ChatOptions& o) {
  auto runner = load_runner(o.model);
  if (!runner) return fail("chat", runner.message());
  const Tokenizer& tok = runner->tokenizer;
  const ChatTemplateTokens marks = ChatTemplateTokens::for_tokenizer(tok);
  Session session(*runner->model, tok, runner->context);
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  const bool interactive = isatty(STDIN_FILENO);
  bool answered = false;  // an answer is in the cache without its closing EOS
  if (interactive) std::fprintf(stderr, "dsv3 chat: /reset to start over, /exit to quit, Ctrl-C stops an answer\n");
  std::string line;
  while (true) {
    if (interactive) std::fputs("\n> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      session.reset();
      answered = false;
      std::fputs("(conversation reset)\n", stdout);
      continue;
    }
    if (line.empty()) continue;
    // The first turn renders BOS + system prompt + user turn; later turns continue the cache with
    // the previous answer's EOS, then the new user turn (exactly what the template renders).
    std::string text;
    if (session.length() == 0) {
      std::vector<ChatMessage> msgs;
      if (!o.system.empty()) msgs.push_back({"system", o.system, {}});
      msgs.push_back({"user", line, {}});
      text = render_chat(msgs, true, marks);
    } else {
      text = (answered ? marks.eos : "") + marks.user + line + marks.assistant;
    }
    if (Status st = session.feed(tok.encode(text)); !st) {
      std::fprintf(stderr, "dsv3 chat: %s (use /reset)\n", st.message().c_str());
      continue;
    }
    g_interrupted.store(false);
    auto r = session.generate(o.sampler, [](std::string_view t) {
      std::fwrite(t.data(), 1, t.size(), stdout);
      std::fflush(stdout);
    }, &g_interrupted);
    if (!r) {
      std::fprintf(stderr, "\ndsv3 chat: %s (use /reset)\n", r.message().c_str());
      continue;
    }
    answered = true;
    if (r->finish == FinishReason::kNone) std::fputs(" [stopped]", stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  return 0;
}

RunFn setup_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  add_model_options(app, o->model);
  add_sampler_options(app, o->sampler);
  app.add_option("--system", o->system, "system prompt");
  return [o] { return run_chat(*o); };
}

DSV3_COMMAND("chat", "interactive multi-turn chat (history kept in the KV cache)", setup_chat);

}  // namespace
}  // namespace dsv3::cli
