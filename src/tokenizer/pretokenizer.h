// The pre-tokenizer of a Hugging Face tokenizer.json: splits (normalized) text into pieces
// that BPE encodes independently. Supported: a `Sequence` of `Split` steps (Regex or String
// pattern, behaviour `Isolated`, not inverted) ending in `ByteLevel` (add_prefix_space false;
// use_regex true adds the GPT-2 split). The byte-level mapping itself happens in BPE, which
// works on raw bytes; here ByteLevel only contributes its optional regex.
//
// Regexes are compiled with PCRE2 (UTF + UCP, JIT) from the patterns in the file. Hugging Face
// compiles them with Oniguruma (Ruby syntax); the two agree on the constructs these patterns use
// except `\s`, which PCRE2 extends with U+180E. `\s`/`\S` are therefore rewritten to the explicit
// Oniguruma set (U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
// U+202F, U+205F, U+3000 = Unicode White_Space) before compiling.
//
// Thread-safety: split() is const and may run concurrently.
#pragma once

#include "core/status.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

struct Span {
  uint32_t begin;
  uint32_t end;
};

namespace detail {
struct CompiledRegex;
// Rewrites `\s` and `\S` to Oniguruma's White_Space set (see the header comment). Errors on
// constructs that cannot be rewritten (`\S` inside a character class).
Result<std::string> rewrite_whitespace_classes(std::string_view pattern);
}  // namespace detail

class PreTokenizer {
 public:
  // Builds from the "pre_tokenizer" object of tokenizer.json (null = no splitting, which is
  // rejected because the BPE here needs ByteLevel).
  static Result<PreTokenizer> from_json(const nlohmann::json& config);
  // From explicit Isolated regex steps (the trainer uses the same steps it writes to its file).
  static Result<PreTokenizer> from_patterns(const std::vector<std::string>& patterns);

  // Appends the pieces of text[span] to out, in order; pieces cover the span exactly.
  // text must be valid UTF-8.
  void split(std::string_view text, Span span, std::vector<Span>& out) const;

  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;  // as written in the file
  std::vector<std::shared_ptr<const detail::CompiledRegex>> steps_;
};

// The DeepSeek-V3 patterns (the trainer's default pre-tokenizer).
const std::vector<std::string>& deepseek_v3_split_patterns();

}  // namespace dsv3
