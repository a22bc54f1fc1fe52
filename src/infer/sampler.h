// Next-token sampling: pure functions over a logits vector (no model knowledge), plus the stop
// rules of a generation (EOS, max new tokens, stop strings).
//
// Order of operations (Hugging Face's logits-processor order): repetition penalty -> presence
// and frequency penalties -> logit bias -> temperature -> top-k -> top-p -> min-p -> draw. Temperature 0 (or
// top_k 1) is greedy. Ties are broken towards the lower token id everywhere, so results do not
// depend on sort stability.
//
// Reproducibility: the uniform draw for generation step i (i = number of tokens generated so
// far) is Rng(seed).uniform(i) from core/rng.h — it depends only on (seed, i), not on earlier
// draws, threads or batch composition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsv3 {

struct SamplerConfig {
  float temperature = 1.0f;         // 0 = greedy
  int top_k = 0;                    // keep the k most likely tokens; 0 = off
  float top_p = 1.0f;               // keep the smallest set with probability mass >= top_p; 1 = off
  float min_p = 0.0f;               // drop tokens with p < min_p * p_max; 0 = off
  float repetition_penalty = 1.0f;  // HF: logit / r if logit > 0 else logit * r, over prompt + output
  float presence_penalty = 0.0f;    // OpenAI: logit -= presence if the token was generated
  float frequency_penalty = 0.0f;   // OpenAI: logit -= frequency * (times generated)
  uint64_t seed = 0;
  size_t max_new_tokens = 256;
  bool stop_at_eos = true;
  std::vector<std::pair<int32_t, float>> logit_bias;  // OpenAI: added to the logit of each token
  std::vector<std::string> stop;  // stop strings; the text stops before the earliest match
};

// --- The pieces, exposed for tests and for callers that compose their own pipeline. ---

// HF RepetitionPenaltyLogitsProcessor: each distinct token of `tokens` is penalized once.
void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> tokens, float penalty);
// OpenAI-style: logit[t] -= presence * [count(t) > 0] + frequency * count(t), counts over `generated`.
void apply_presence_frequency_penalty(std::span<float> logits, std::span<const int32_t> generated, float presence,
                                      float frequency);
// logit[t] += bias for each (t, bias); ids outside the logits are ignored (callers validate).
void apply_logit_bias(std::span<float> logits, std::span<const std::pair<int32_t, float>> bias);
// Index of the largest logit (lowest index among ties; NaN never wins).
int32_t argmax(std::span<const float> logits);

struct Candidate {
  int32_t id;
  double p;
};
// The distribution left after temperature, top-k, top-p and min-p, probabilities renormalized
// to sum to 1. The most likely token (lowest id among ties) comes first; the rest are sorted by
// probability (descending, ties by id) when top-k or top-p is active, else in id order.
// Needs temperature > 0.
std::vector<Candidate> filtered_distribution(std::span<const float> logits, const SamplerConfig& config);
// Inverse-CDF draw: the first candidate whose cumulative probability exceeds u in [0, 1).
int32_t draw(const std::vector<Candidate>& candidates, float u);

class Sampler {
 public:
  explicit Sampler(SamplerConfig config) : config_(std::move(config)) {}
  const SamplerConfig& config() const { return config_; }

  // Picks the next token. logits is scratch (penalties are applied in place). prompt and
  // generated are the context for the penalties; generated.size() is the step index.
  int32_t sample(std::span<float> logits, std::span<const int32_t> prompt, std::span<const int32_t> generated) const;

 private:
  SamplerConfig config_;
};

enum class FinishReason { kNone, kEos, kLength, kStop };

// Whether generation ends after `token` became the n_generated-th new token (EOS takes
// precedence over the length limit). Stop strings are checked on text: see find_stop.
FinishReason finish_reason(const SamplerConfig& config, int32_t token, size_t n_generated, int32_t eos_id);

struct StopCheck {
  bool stopped = false;  // a stop string occurs; the output ends at `safe_length`
  size_t safe_length = 0;  // text[0, safe_length) can be emitted now (and never changes)
};
// Scans the generated text for stop strings. When none occurs, safe_length excludes the longest
// tail that is a proper prefix of some stop string (it might still become one). search_from:
// a previous safe_length (no stop string can start before it), to avoid rescanning.
StopCheck find_stop(std::string_view text, const std::vector<std::string>& stops, size_t search_from = 0);

}  // namespace dsv3
