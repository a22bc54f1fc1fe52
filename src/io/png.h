// PNG encoding of 8-bit RGB images (for charts): signature, IHDR, one zlib-compressed IDAT
// (filter type 0 on every row), IEND; chunk CRCs and the deflate stream from zlib.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace dsv3 {

// The PNG file bytes of a width x height image, rgb = 3 bytes per pixel, rows top to bottom.
std::vector<uint8_t> encode_png_rgb(int width, int height, const uint8_t* rgb);

// Encodes and writes atomically.
Status write_png_rgb(const std::string& path, int width, int height, const uint8_t* rgb);

}  // namespace dsv3
