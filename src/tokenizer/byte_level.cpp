#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace dsv3 {

namespace {

struct Tables {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 512> from_unicode{};  // every alphabet code point is < 0x144
  std::array<std::string, 256> pieces;

  Tables() {
    from_unicode.fill(-1);
    // bytes_to_unicode() of GPT-2's encoder.py: printable ranges keep their code point, the
    // rest get 256, 257, ... in increasing byte order.
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? char32_t(b) : char32_t(next++);
      to_unicode[b] = cp;
      from_unicode[cp] = int16_t(b);
      utf8_append(pieces[b], cp);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return tables().to_unicode[b]; }

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
  if (cp >= 512) return std::nullopt;
  const int16_t b = tables().from_unicode[cp];
  if (b < 0) return std::nullopt;
  return uint8_t(b);
}

const std::array<std::string, 256>& byte_level_pieces() { return tables().pieces; }

std::string bytes_to_byte_level(std::string_view bytes) {
  const auto& pieces = tables().pieces;
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += pieces[uint8_t(c)];
  return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = utf8_sequence_length(text, i);
    if (len == 0) return std::nullopt;
    const auto b = unicode_to_byte(utf8_decode_at(text, i, len));
    if (!b) return std::nullopt;
    out.push_back(char(*b));
    i += len;
  }
  return out;
}

}  // namespace dsv3
