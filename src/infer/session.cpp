#include "infer/session.h"

#include "core/timer.h"

namespace dsv3 {
namespace {
constexpr int64_t kPageSize = 64;
}

Session::Session(Transformer& model, const Tokenizer& tokenizer, int64_t max_context)
    : model_(model),
      tokenizer_(tokenizer),
      max_context_(max_context),
      pool_(std::make_unique<KvPool>(model.cache_layers(), model.cache_row_dim(), kPageSize,
                                     (max_context + kPageSize - 1) / kPageSize)),
      cache_(*pool_),
      logits_(size_t(model.config().vocab_size)) {}

Status Session::feed(std::span<const int32_t> tokens) {
  if (tokens.empty()) return Status::ok();
  if (length() + int64_t(tokens.size()) > max_context_) {
    return Status::errorf("the context would hold {} tokens, more than its {}", length() + int64_t(tokens.size()),
                          max_context_);
  }
  Timer t;
  SeqChunk chunk{&cache_, tokens.data(), int64_t(tokens.size())};
  DSV3_TRY(model_.forward({&chunk, 1}, logits_.data()));
  history_.insert(history_.end(), tokens.begin(), tokens.end());
  prefill_seconds_ += t.seconds();
  return Status::ok();
}

Result<GenerationResult> Session::generate(const SamplerConfig& config,
                                           const std::function<void(std::string_view)>& on_text,
                                           const std::atomic<bool>* cancel) {
  if (history_.empty()) return Status::error("generate needs a non-empty context");
  GenerationResult out;
  Sampler sampler(config);
  StreamDecoder decoder(tokenizer_);
  std::string pending;  // decoded text not yet emitted (may be the start of a stop string)
  size_t search_from = 0;
  const std::span<const int32_t> prompt(history_.data(), history_.size());
  std::vector<int32_t> prompt_copy(prompt.begin(), prompt.end());
  Timer t;
  while (true) {
    if (cancel != nullptr && cancel->load()) break;
    const int32_t token = sampler.sample(logits_, prompt_copy, out.tokens);
    out.finish = finish_reason(config, token, out.tokens.size() + 1, tokenizer_.eos_id());
    if (out.finish == FinishReason::kEos) break;
    out.tokens.push_back(token);
    pending += decoder.push(token);
    StopCheck stop = find_stop(pending, config.stop, search_from);
    if (stop.stopped) out.finish = FinishReason::kStop;
    if (stop.safe_length > 0 || stop.stopped) {
      const std::string_view ready(pending.data(), stop.safe_length);
      if (on_text) on_text(ready);
      out.text += ready;
      pending.erase(0, stop.safe_length);
      search_from = 0;
    }
    if (length() + 1 > max_context_) {
      out.finish = FinishReason::kLength;
      break;
    }
    SeqChunk chunk{&cache_, &token, 1};
    DSV3_TRY(model_.forward({&chunk, 1}, logits_.data()));
    history_.push_back(token);
    if (out.finish != FinishReason::kNone) break;
  }
  if (out.finish != FinishReason::kStop) {  // flush what was held back (no stop string matched)
    pending += decoder.flush();
    if (on_text && !pending.empty()) on_text(pending);
    out.text += pending;
  }
  out.decode_seconds = t.seconds();
  return out;
}

void Session::reset() {
  cache_.release();
  history_.clear();
  prefill_seconds_ = 0;
}

}  // namespace dsv3
