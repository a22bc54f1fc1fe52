#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace dsv3 {

namespace {

// Unicode White_Space (Rust's char::is_whitespace, used by HF for lstrip/rstrip).
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Word characters for single_word: ASCII alphanumerics and '_' plus every non-ASCII code point
// that is not whitespace. Exact for ASCII text; non-ASCII punctuation next to a single_word token
// counts as a word character here (no DeepSeek-V3 token sets single_word).
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return !is_white_space(c);
}

// Code point ending at byte offset end (text valid UTF-8, end > 0).
char32_t code_point_before(std::string_view text, size_t end) {
  size_t b = end - 1;
  while (b > 0 && (uint8_t(text[b]) & 0xC0) == 0x80) --b;
  return utf8_decode_at(text, b, end - b);
}

char32_t code_point_at(std::string_view text, size_t i, size_t* len) {
  *len = utf8_sequence_length(text, i);
  if (*len == 0) *len = 1;
  return utf8_decode_at(text, i, *len);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
  raw_pass_.by_first_byte.resize(256);
  normalized_pass_.by_first_byte.resize(256);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    Pass& pass = tokens_[i].normalized ? normalized_pass_ : raw_pass_;
    pass.by_first_byte[uint8_t(tokens_[i].content[0])].push_back(int32_t(i));
    pass.empty = false;
  }
  for (Pass* pass : {&raw_pass_, &normalized_pass_})
    for (auto& list : pass->by_first_byte)
      std::stable_sort(list.begin(), list.end(),
                       [&](int32_t a, int32_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
}

void AddedTokenMatcher::split_pass(const Pass& pass, std::string_view text, Span span,
                                   std::vector<Segment>& out) const {
  size_t gap = span.begin;  // start of the pending text segment
  size_t i = span.begin;
  while (i < span.end) {
    const auto& candidates = pass.by_first_byte[uint8_t(text[i])];
    const AddedToken* hit = nullptr;
    for (int32_t c : candidates) {
      const AddedToken& t = tokens_[c];
      if (t.content.size() > span.end - i || text.compare(i, t.content.size(), t.content) != 0) continue;
      if (t.single_word) {
        const size_t stop = i + t.content.size();
        size_t len;
        const bool word_before = i > span.begin && is_word_char(code_point_before(text, i));
        const bool word_after = stop < span.end && is_word_char(code_point_at(text, stop, &len));
        if (word_before || word_after) continue;
      }
      hit = &t;
      break;
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t start = i, stop = i + hit->content.size();
    if (hit->lstrip)
      while (start > gap && is_white_space(code_point_before(text, start))) {
        --start;
        while (start > gap && (uint8_t(text[start]) & 0xC0) == 0x80) --start;
      }
    if (hit->rstrip)
      for (size_t len; stop < span.end && is_white_space(code_point_at(text, stop, &len));) stop += len;
    if (start > gap) out.push_back({{uint32_t(gap), uint32_t(start)}, -1});
    out.push_back({{uint32_t(start), uint32_t(stop)}, hit->id});
    gap = i = stop;
  }
  if (gap < span.end) out.push_back({{uint32_t(gap), span.end}, -1});
}

std::vector<Segment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Segment> first;
  const Span all{0, uint32_t(text.size())};
  if (text.empty()) return first;
  if (raw_pass_.empty) {
    first.push_back({all, -1});
  } else {
    split_pass(raw_pass_, text, all, first);
  }
  if (normalized_pass_.empty) return first;
  std::vector<Segment> out;
  for (const Segment& s : first) {
    if (s.id >= 0) {
      out.push_back(s);
    } else {
      split_pass(normalized_pass_, text, s.span, out);
    }
  }
  return out;
}

}  // namespace dsv3
