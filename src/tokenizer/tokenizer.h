// A Hugging Face byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json), matching HF
// token for token on the DeepSeek-V3 tokenizer: added tokens -> (no normalizer) -> Split regex
// pre-tokenizer -> byte-level BPE; decoding through the ByteLevel decoder.
//
// Input that is not valid UTF-8 is first repaired (each maximal invalid subpart -> U+FFFD), the
// conversion HF's Python/JS front ends apply before their Rust/JS core (which only accepts valid
// strings) sees the text. decode() replaces invalid UTF-8 in the output the same way;
// decode_bytes() returns the raw bytes.
//
// A Tokenizer is an immutable shared handle: cheap to copy, safe to use from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tokenizer/added_tokens.h"

namespace dsv3 {

class Tokenizer {
 public:
  // path_or_dir: a tokenizer.json, or a directory holding one. tokenizer_config.json next to
  // it is read when present (bos/eos/pad tokens, add_bos_token, chat_template).
  static Result<Tokenizer> load(const std::string& path_or_dir);
  // From file contents; config_json may be empty.
  static Result<Tokenizer> from_json(std::string_view tokenizer_json, std::string_view config_json);

  // Token ids of text (no BOS unless add_bos and the tokenizer has one).
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const;

  // Text of ids. Ids without a token (out of range, unused embedding rows) are skipped, as HF
  // does; skip_special drops tokens marked special (BOS, EOS, pad, placeholders), not the chat
  // markers, which DeepSeek-V3 marks non-special.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  std::string decode_bytes(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes one id stands for (empty for an id without a token).
  std::string_view token_bytes(int32_t id) const;

  // Id of a vocab string (byte-level form, e.g. "Ġthe") or added token content.
  std::optional<int32_t> token_id(std::string_view token) const;
  // The vocab / added-token string of an id.
  std::optional<std::string> id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;

  int32_t bos_id() const;  // -1 when the tokenizer has none
  int32_t eos_id() const;  // -1 when the tokenizer has none
  int32_t pad_id() const;  // -1 when the tokenizer has none
  bool add_bos_token() const;  // tokenizer_config's default for "add special tokens"
  // One past the largest id that has a token (the model may have more embedding rows).
  size_t vocab_size() const;
  const std::string& chat_template() const;  // Jinja source from tokenizer_config ("" if none)
  const std::vector<AddedToken>& added_tokens() const;

  // Exposed for tests: the pre-tokens (raw bytes) of a text without added tokens.
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Incremental detokenizer for streaming generation: push() returns the text that became
// complete, holding back the bytes of a partial UTF-8 character; flush() returns what is left
// (a partial character becomes U+FFFD). The concatenation of all outputs equals
// tokenizer.decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(Tokenizer tokenizer, bool skip_special = false)
      : tokenizer_(std::move(tokenizer)), skip_special_(skip_special) {}
  std::string push(int32_t id);
  std::string flush();

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace dsv3
