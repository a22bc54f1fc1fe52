// UTF-8 helpers for the tokenizer: validation, lossy repair and the "complete prefix" test the
// streaming decoder needs. Invalid input never aborts: repair replaces each maximal invalid
// subpart with U+FFFD, the rule of Unicode §3.9 / WHATWG that Rust's String::from_utf8_lossy
// (Hugging Face tokenizers) and JavaScript's TextDecoder both follow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsv3 {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not one.
// When 0 is returned, *invalid_len (if given) receives the length of the maximal subpart to
// replace (>= 1), i.e. the longest prefix that could still have started a valid sequence.
size_t utf8_sequence_length(std::string_view s, size_t i, size_t* invalid_len = nullptr);

bool utf8_is_valid(std::string_view s);

// s with every maximal invalid subpart replaced by U+FFFD; s itself when already valid.
std::string utf8_repair(std::string_view s);

// Length of the longest prefix of s after which the remaining bytes are a (strict) prefix of
// some valid sequence, i.e. could still be completed by more bytes. Everything before that
// point can be emitted now; the rest must be held back.
size_t utf8_emittable_prefix(std::string_view s);

// Decodes the code point of the valid sequence at s[i] of length len.
char32_t utf8_decode_at(std::string_view s, size_t i, size_t len);
void utf8_append(std::string& out, char32_t cp);

}  // namespace dsv3
