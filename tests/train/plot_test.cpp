// PNG encoding (decoded back with zlib, chunk CRCs checked), tick choice, and chart rendering.
#include "train/plot.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/png.h"
#include "support/temp_dir.h"

namespace dsv3 {
namespace {

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// Minimal PNG reader for 8-bit RGB, filter 0 (what the encoder writes): returns the pixels.
std::vector<uint8_t> decode_png(const std::vector<uint8_t>& png, int& w, int& h) {
  const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  EXPECT_EQ(std::memcmp(png.data(), sig, 8), 0);
  std::vector<uint8_t> idat;
  size_t p = 8;
  bool end = false;
  while (p + 12 <= png.size() && !end) {
    uint32_t n = be32(&png[p]);
    std::string type(reinterpret_cast<const char*>(&png[p + 4]), 4);
    uint32_t crc = be32(&png[p + 8 + n]);
    EXPECT_EQ(crc, uint32_t(::crc32(0, &png[p + 4], n + 4))) << type;
    if (type == "IHDR") {
      w = int(be32(&png[p + 8]));
      h = int(be32(&png[p + 12]));
      EXPECT_EQ(png[p + 16], 8);  // bit depth
      EXPECT_EQ(png[p + 17], 2);  // RGB
    } else if (type == "IDAT") {
      idat.insert(idat.end(), &png[p + 8], &png[p + 8 + n]);
    } else if (type == "IEND") {
      end = true;
    }
    p += 12 + n;
  }
  EXPECT_TRUE(end);
  EXPECT_EQ(p, png.size());
  std::vector<uint8_t> raw(size_t(h) * (size_t(w) * 3 + 1));
  uLongf len = raw.size();
  EXPECT_EQ(uncompress(raw.data(), &len, idat.data(), idat.size()), Z_OK);
  EXPECT_EQ(len, raw.size());
  std::vector<uint8_t> rgb;
  for (int y = 0; y < h; ++y) {
    EXPECT_EQ(raw[size_t(y) * (size_t(w) * 3 + 1)], 0);
    const uint8_t* row = &raw[size_t(y) * (size_t(w) * 3 + 1) + 1];
    rgb.insert(rgb.end(), row, row + size_t(w) * 3);
  }
  return rgb;
}

TEST(Png, RoundTripThroughZlib) {
  const int W = 37, H = 11;
  std::vector<uint8_t> px(size_t(W * H * 3));
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 7 + i / 13);
  std::vector<uint8_t> png = encode_png_rgb(W, H, px.data());
  int w = 0, h = 0;
  EXPECT_EQ(decode_png(png, w, h), px);
  EXPECT_EQ(w, W);
  EXPECT_EQ(h, H);
}

TEST(Plot, NiceTicks) {
  EXPECT_EQ(nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(1, 200, 8), (std::vector<double>{50, 100, 150, 200}));
  std::vector<double> t = nice_ticks(0.013, 0.047, 6);
  // Raw spacing 0.034/6 = 0.0057 rounds up to 0.01 (the next of 1, 2, 5, 10 × 10^-3).
  ASSERT_EQ(t.size(), 3u);
  EXPECT_NEAR(t.front(), 0.02, 1e-12);
  EXPECT_NEAR(t.back(), 0.04, 1e-12);
}

TEST(Plot, TextAndLinesLandWhereExpected) {
  Image img(40, 20);
  img.text(2, 2, "1", {0, 0, 0}, 1);
  // '1' = columns 0x00, 0x42, 0x7F, 0x40, 0x00: column 2 is a full 7-pixel stem.
  for (int row = 0; row < 7; ++row) EXPECT_EQ(img.at(2 + 2, 2 + row).r, 0) << row;
  EXPECT_EQ(img.at(2, 2).r, 255);
  img.line(0, 19, 39, 19, {255, 0, 0}, 1);
  EXPECT_EQ(img.at(20, 19).g, 0);

  // A diagonal series from (0, 0) to (10, 10) passes the middle of the plot area in color 0.
  Series s{"run", {0, 10}, {0, 10}};
  Image chart = render_line_chart({"t"}, {s});
  const int x0 = 100, x1 = 960 - 24, y0 = 56, y1 = 600 - 64;
  Rgb mid = chart.at((x0 + x1) / 2, (y0 + y1) / 2);
  EXPECT_EQ(mid.r, 0);
  EXPECT_EQ(mid.g, 114);
  EXPECT_EQ(mid.b, 178);
}

TEST(Plot, MetricsFilesToCharts) {
  testing::TempDir dir("plot");
  std::filesystem::create_directories(dir / "a");
  std::ofstream(dir / "a/metrics.jsonl") << "{\"type\":\"train\",\"step\":1,\"loss\":5.0,\"max_vio\":0.5,"
                                            "\"tokens_per_s\":100,\"lr\":0.001}\n"
                                            "{\"type\":\"train\",\"step\":2,\"loss\":4.0,\"max_vio\":0.3,"
                                            "\"tokens_per_s\":110,\"lr\":0.001}\n"
                                            "{\"type\":\"eval\",\"step\":2,\"val_loss\":4.5}\n";
  Result<std::vector<std::string>> w = plot_metrics({dir / "a/metrics.jsonl"}, dir / "plots");
  ASSERT_TRUE(w.is_ok()) << w.message();
  EXPECT_EQ(w->size(), 5u);
  std::ifstream in(dir / "plots/loss.png", std::ios::binary);
  std::vector<uint8_t> png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int width = 0, height = 0;
  decode_png(png, width, height);
  EXPECT_EQ(width, 960);
  EXPECT_EQ(height, 600);
  EXPECT_FALSE(plot_metrics({dir / "missing.jsonl"}, dir / "plots").is_ok());
}

}  // namespace
}  // namespace dsv3
