#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "io/json.h"
#include "io/png.h"
#include "train/plot_font.h"

namespace dsv3 {

namespace fs = std::filesystem;

namespace {

constexpr Rgb kBlack{0, 0, 0}, kGrid{225, 225, 225}, kAxisText{60, 60, 60};
// Colors distinguishable in print and for common color-vision deficiencies (Okabe-Ito).
constexpr Rgb kPalette[] = {{0, 114, 178}, {213, 94, 0}, {0, 158, 115}, {204, 121, 167},
                            {230, 159, 0}, {86, 180, 233}, {0, 0, 0},    {240, 228, 66}};

std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;  // no "-1.4e-17"
  return fmt::format("{:.4g}", v);
}

}  // namespace

Image::Image(int width, int height, Rgb bg) : w_(width), h_(height), px_(size_t(width) * size_t(height) * 3) {
  for (size_t i = 0; i < px_.size(); i += 3) {
    px_[i] = bg.r;
    px_[i + 1] = bg.g;
    px_[i + 2] = bg.b;
  }
}

Rgb Image::at(int x, int y) const {
  size_t i = (size_t(y) * size_t(w_) + size_t(x)) * 3;
  return {px_[i], px_[i + 1], px_[i + 2]};
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  size_t i = (size_t(y) * size_t(w_) + size_t(x)) * 3;
  px_[i] = c.r;
  px_[i + 1] = c.g;
  px_[i + 2] = c.b;
}

void Image::fill_rect(int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = std::max(0, std::min(y0, y1)); y <= std::min(h_ - 1, std::max(y0, y1)); ++y)
    for (int x = std::max(0, std::min(x0, x1)); x <= std::min(w_ - 1, std::max(x0, x1)); ++x) set(x, y, c);
}

void Image::line(int x0, int y0, int x1, int y1, Rgb c, int thickness) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  int err = dx + dy;
  while (true) {
    fill_rect(x0 + lo, y0 + lo, x0 + hi, y0 + hi, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

void Image::text(int x, int y, const std::string& s, Rgb c, int scale) {
  for (size_t i = 0; i < s.size(); ++i) {
    const uint8_t* cols = detail::glyph_columns(s[i]);
    const int gx = x + int(i) * 6 * scale;
    for (int col = 0; col < detail::kGlyphWidth; ++col)
      for (int row = 0; row < detail::kGlyphHeight; ++row)
        if (cols[col] & (1u << row)) fill_rect(gx + col * scale, y + row * scale, gx + col * scale + scale - 1,
                                               y + row * scale + scale - 1, c);
  }
}

std::vector<double> nice_ticks(double lo, double hi, int target_count) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target_count);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push_back(v);
  return out;
}

Image render_line_chart(const ChartOptions& opt, const std::vector<Series>& series) {
  Image img(opt.width, opt.height);
  const int S = 2;  // font scale
  const int left = 100, right = 24, top = 56, bottom = 64;
  const int x0 = left, x1 = opt.width - right, y0 = top, y1 = opt.height - bottom;

  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  img.text((opt.width - Image::text_width(opt.title, S)) / 2, 16, opt.title, kBlack, S);
  if (!std::isfinite(xmin)) {
    img.text(x0 + 20, (y0 + y1) / 2, "no data", kAxisText, S);
    return img;
  }
  if (xmax == xmin) xmin -= 1, xmax += 1;
  if (ymax == ymin) {
    double d = std::max(std::fabs(ymin) * 0.1, 1e-6);
    ymin -= d, ymax += d;
  }
  const double pad = (ymax - ymin) * 0.05;
  ymin -= pad, ymax += pad;
  auto px = [&](double x) { return x0 + int(std::lround((x - xmin) / (xmax - xmin) * (x1 - x0))); };
  auto py = [&](double y) { return y1 - int(std::lround((y - ymin) / (ymax - ymin) * (y1 - y0))); };

  // Grid and tick labels.
  std::vector<double> yt = nice_ticks(ymin, ymax, 6), xt = nice_ticks(xmin, xmax, 8);
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1, xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  for (double v : yt) {
    int y = py(v);
    img.line(x0, y, x1, y, kGrid);
    std::string l = tick_label(v, ystep);
    img.text(x0 - 8 - Image::text_width(l, S), y - 4 * S, l, kAxisText, S);
  }
  for (double v : xt) {
    int x = px(v);
    img.line(x, y0, x, y1, kGrid);
    std::string l = tick_label(v, xstep);
    img.text(x - Image::text_width(l, S) / 2, y1 + 8, l, kAxisText, S);
  }
  img.line(x0, y1, x1, y1, kBlack);
  img.line(x0, y0, x0, y1, kBlack);
  img.text((x0 + x1 - Image::text_width(opt.x_label, S)) / 2, opt.height - 28, opt.x_label, kAxisText, S);

  // Lines (a single point becomes a small square).
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const Rgb c = kPalette[k % std::size(kPalette)];
    int px_prev = 0, py_prev = 0;
    bool have = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        have = false;
        continue;
      }
      int x = px(s.x[i]), y = py(s.y[i]);
      if (have) img.line(px_prev, py_prev, x, y, c, 2);
      else img.fill_rect(x - 1, y - 1, x + 1, y + 1, c);
      px_prev = x, py_prev = y, have = true;
    }
  }

  // Legend, top right inside the plot area.
  if (!series.empty()) {
    int wmax = 0;
    for (const Series& s : series) wmax = std::max(wmax, Image::text_width(s.label, S));
    const int lh = 10 * S, lx1 = x1 - 8, lx0 = lx1 - wmax - 44, ly0 = y0 + 8;
    const int ly1 = ly0 + int(series.size()) * lh + 8;
    img.fill_rect(lx0, ly0, lx1, ly1, {255, 255, 255});
    img.line(lx0, ly0, lx1, ly0, kGrid);
    img.line(lx0, ly1, lx1, ly1, kGrid);
    img.line(lx0, ly0, lx0, ly1, kGrid);
    img.line(lx1, ly0, lx1, ly1, kGrid);
    for (size_t k = 0; k < series.size(); ++k) {
      const int y = ly0 + 6 + int(k) * lh;
      img.fill_rect(lx0 + 8, y + 5, lx0 + 32, y + 8, kPalette[k % std::size(kPalette)]);
      img.text(lx0 + 40, y, series[k].label, kBlack, S);
    }
  }
  return img;
}

Result<std::vector<std::string>> plot_metrics(const std::vector<std::string>& files, const std::string& out_dir) {
  struct Chart {
    const char* file;
    const char* title;
    const char* type;
    const char* key;
  };
  const Chart charts[] = {{"loss.png", "training loss (main + MTP + balance)", "train", "loss"},
                          {"val_loss.png", "validation loss", "eval", "val_loss"},
                          {"max_vio.png", "MaxVio (expert load, mean over MoE layers)", "train", "max_vio"},
                          {"tokens_per_s.png", "tokens / s", "train", "tokens_per_s"},
                          {"lr.png", "learning rate", "train", "lr"}};
  // Run labels: the directory holding each log (the full path when two share a name).
  std::vector<std::string> labels;
  for (const std::string& f : files) {
    std::string l = fs::absolute(f).parent_path().filename().string();
    labels.push_back(l.empty() ? f : l);
  }
  for (size_t i = 0; i < labels.size(); ++i)
    for (size_t j = 0; j < labels.size(); ++j)
      if (i != j && labels[i] == labels[j]) labels[i] = files[i];

  std::vector<std::map<std::string, Series>> runs(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    std::ifstream in(files[i]);
    if (!in) return Status::errorf("{}: cannot open", files[i]);
    int64_t lineno = 0;
    for (std::string line; std::getline(in, line);) {
      ++lineno;
      if (line.empty()) continue;
      Result<Json> j = parse_json(line, fmt::format("{}:{}", files[i], lineno));
      DSV3_TRY(j);
      if (!j->is_object() || !(*j)["type"].is_string() || !(*j)["step"].is_number()) continue;
      for (const Chart& c : charts) {
        if ((*j)["type"] != c.type || !j->contains(c.key) || !(*j)[c.key].is_number()) continue;
        Series& s = runs[i][c.key];
        s.label = labels[i];
        s.x.push_back((*j)["step"].get<double>());
        s.y.push_back((*j)[c.key].get<double>());
      }
    }
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Status::errorf("{}: cannot create directory: {}", out_dir, ec.message());
  std::vector<std::string> written;
  for (const Chart& c : charts) {
    std::vector<Series> series;
    for (auto& run : runs)
      if (auto it = run.find(c.key); it != run.end()) series.push_back(it->second);
    if (series.empty()) continue;
    Image img = render_line_chart({c.title}, series);
    const std::string path = (fs::path(out_dir) / c.file).string();
    DSV3_TRY(write_png_rgb(path, img.width(), img.height(), img.rgb()));
    written.push_back(path);
  }
  return written;
}

}  // namespace dsv3
