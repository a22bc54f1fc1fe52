// The GPT-2 byte <-> unicode alphabet used by byte-level BPE: each of the 256 byte values is
// shown as one printable code point (printable Latin-1 bytes as themselves, the other 68 bytes
// as U+0100.. in byte order), so vocab and merge strings are text. Space -> U+0120 'Ġ',
// '\n' -> U+010A 'Ċ'.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsv3 {

// The code point that shows byte b.
char32_t byte_to_unicode(uint8_t b);

// The byte shown by code point cp, or nothing when cp is not in the alphabet.
std::optional<uint8_t> unicode_to_byte(char32_t cp);

// The UTF-8 text of the alphabet for each byte (what a single-byte token looks like in a vocab).
const std::array<std::string, 256>& byte_level_pieces();

// Maps raw bytes to their alphabet string (UTF-8).
std::string bytes_to_byte_level(std::string_view bytes);

// Maps an alphabet string back to bytes. Returns nothing if a character is outside the
// alphabet (or the string is not valid UTF-8).
std::optional<std::string> byte_level_to_bytes(std::string_view text);

}  // namespace dsv3
