// A 5x8 bitmap font for chart labels (the classic 5x7 LCD glyph set with descenders, printable
// ASCII 32..126): 5 column bytes per glyph, bit 0 = top row.
#pragma once

#include <cstdint>

namespace dsv3::detail {

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 8;
// The 5 column bytes of a character (unknown characters draw as '?').
const uint8_t* glyph_columns(char c);

}  // namespace dsv3::detail
