// Added tokens (special tokens and chat markers) of a tokenizer.json, matched in the raw text
// before pre-tokenization, as Hugging Face's AddedVocabulary does: first the tokens with
// normalized=false, then, inside the text left between those, the tokens with normalized=true
// (no normalizer is supported, so both passes see the same text). Each pass takes the leftmost
// match and, among matches starting there, the longest. single_word, lstrip and rstrip follow
// HF: single_word keeps a match only if no word character touches it; lstrip/rstrip widen
// the match over adjacent whitespace, which then belongs to the token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pretokenizer.h"

namespace dsv3 {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A piece of the input: either an added token (id >= 0) or text to pre-tokenize (id == -1).
struct Segment {
  Span span;
  int32_t id;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Splits text (valid UTF-8) into segments covering it in order. Text segments are non-empty.
  std::vector<Segment> split(std::string_view text) const;

 private:
  struct Pass {
    // by_first_byte[b] = indices into tokens_ of tokens starting with byte b, longest first.
    std::vector<std::vector<int32_t>> by_first_byte;
    bool empty = true;
  };
  void split_pass(const Pass& pass, std::string_view text, Span span, std::vector<Segment>& out) const;

  std::vector<AddedToken> tokens_;
  Pass raw_pass_;         // normalized == false
  Pass normalized_pass_;  // normalized == true
};

}  // namespace dsv3
