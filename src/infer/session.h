// One conversation with a model: a sequence's latent KV cache, fed incrementally, and generation
// with sampling, UTF-8-safe streaming text and stop rules. `dsv3 generate` and `dsv3 chat` run on
// it (the server batches many sequences in its own engine loop).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "infer/sampler.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {

struct GenerationResult {
  std::string text;  // the emitted text (stop string excluded)
  std::vector<int32_t> tokens;  // sampled tokens (EOS excluded)
  FinishReason finish = FinishReason::kNone;  // kNone: cancelled
  double decode_seconds = 0;
};

class Session {
 public:
  // `model` and `tokenizer` must outlive the session. max_context: tokens the cache can hold.
  Session(Transformer& model, const Tokenizer& tokenizer, int64_t max_context);

  // Appends tokens to the context (a prefill chunk); keeps the last token's logits.
  Status feed(std::span<const int32_t> tokens);
  // Samples until EOS, max_new_tokens, a stop string or `cancel`; every sampled token but EOS
  // is fed back, so the context always holds the whole visible history. on_text receives text
  // as soon as it is complete UTF-8 and cannot be the start of a stop string.
  Result<GenerationResult> generate(const SamplerConfig& config, const std::function<void(std::string_view)>& on_text,
                                    const std::atomic<bool>* cancel = nullptr);
  void reset();

  int64_t length() const { return cache_.length(); }
  int64_t max_context() const { return max_context_; }
  const std::vector<int32_t>& history() const { return history_; }
  double prefill_seconds() const { return prefill_seconds_; }

 private:
  Transformer& model_;
  const Tokenizer& tokenizer_;
  int64_t max_context_;
  std::unique_ptr<KvPool> pool_;
  SequenceCache cache_;
  std::vector<float> logits_;
  std::vector<int32_t> history_;
  double prefill_seconds_ = 0;
};

}  // namespace dsv3
