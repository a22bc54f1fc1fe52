// Charts of training metrics (`dsv3 plot`): line charts of one or more runs' metrics.jsonl
// (train/trainer.h) rendered into an RGB raster with a built-in bitmap font and written as PNG.
// One chart per quantity: training loss, validation loss, MaxVio, tokens/s, learning rate;
// each run one colored line, named in a legend by its run directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace dsv3 {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// An RGB raster, rows top to bottom. Drawing clips to the image.
class Image {
 public:
  Image(int width, int height, Rgb background = {255, 255, 255});
  int width() const { return w_; }
  int height() const { return h_; }
  const uint8_t* rgb() const { return px_.data(); }
  Rgb at(int x, int y) const;

  void set(int x, int y, Rgb c);
  void fill_rect(int x0, int y0, int x1, int y1, Rgb c);  // inclusive corners
  // A line of `thickness` pixels (Bresenham with a square pen).
  void line(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
  // Text with the 5x8 font scaled by `scale`; (x, y) is the top-left corner.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  static int text_width(const std::string& s, int scale) { return int(s.size()) * 6 * scale; }

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

struct Series {
  std::string label;
  std::vector<double> x, y;
};

struct ChartOptions {
  std::string title;
  std::string x_label = "step";
  int width = 960;
  int height = 600;
};

Image render_line_chart(const ChartOptions& opt, const std::vector<Series>& series);

// "Nice" tick positions (1, 2, 5 × 10^k spacing) covering [lo, hi]. Exposed for tests.
std::vector<double> nice_ticks(double lo, double hi, int target_count);

// Reads the metrics logs and writes loss.png, val_loss.png, max_vio.png, tokens_per_s.png and
// lr.png (charts with no data are skipped) into out_dir; returns the files written.
Result<std::vector<std::string>> plot_metrics(const std::vector<std::string>& metrics_files, const std::string& out_dir);

}  // namespace dsv3
