#include "io/png.h"

#include <zlib.h>

#include <cstring>
#include <string_view>

#include "core/check.h"
#include "io/atomic_file.h"

namespace dsv3 {

namespace {

void put_u32_be(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

// length | type | data | CRC-32(type + data)
void put_chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t n) {
  put_u32_be(out, uint32_t(n));
  size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data, data + n);
  uLong crc = ::crc32(0L, out.data() + start, uInt(n + 4));
  put_u32_be(out, uint32_t(crc));
}

}  // namespace

std::vector<uint8_t> encode_png_rgb(int width, int height, const uint8_t* rgb) {
  DSV3_CHECK(width > 0 && height > 0, "image size {}x{}", width, height);
  const size_t row = size_t(width) * 3;
  std::vector<uint8_t> raw((row + 1) * size_t(height));
  for (int y = 0; y < height; ++y) {
    raw[size_t(y) * (row + 1)] = 0;  // filter: none
    std::memcpy(&raw[size_t(y) * (row + 1) + 1], rgb + size_t(y) * row, row);
  }
  uLongf zlen = compressBound(uLong(raw.size()));
  std::vector<uint8_t> z(zlen);
  int rc = compress2(z.data(), &zlen, raw.data(), uLong(raw.size()), 9);
  DSV3_CHECK(rc == Z_OK, "zlib compress2 failed ({})", rc);
  z.resize(zlen);

  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32_be(ihdr, uint32_t(width));
  put_u32_be(ihdr, uint32_t(height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit, truecolor RGB, deflate, filter 0, no interlace
  put_chunk(out, "IHDR", ihdr.data(), ihdr.size());
  put_chunk(out, "IDAT", z.data(), z.size());
  put_chunk(out, "IEND", nullptr, 0);
  return out;
}

Status write_png_rgb(const std::string& path, int width, int height, const uint8_t* rgb) {
  std::vector<uint8_t> png = encode_png_rgb(width, height, rgb);
  return write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

}  // namespace dsv3
