#include "kernels/membw.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/check.h"
#include "core/parallel_for.h"
#include "core/timer.h"
#include "kernels/avx2.h"
#include "kernels/dispatch.h"

namespace dsv3::kernels {

double read_sum(const float* p, int64_t n) {
  if (avx2_kernels()) return avx2::read_sum(p, n);
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) s[j] += p[i + j];
  }
  double total = 0.0;
  for (; i < n; ++i) total += p[i];
  for (float v : s) total += v;
  return total;
}

BandwidthResult measure_read_bandwidth(int64_t bytes, int threads, int passes) {
  DSV3_CHECK(bytes >= 64 && threads >= 1 && passes >= 1, "bytes={} threads={} passes={}", bytes, threads, passes);
  const int64_t n = bytes / 64 * 16;  // floats
  std::unique_ptr<float, decltype(&std::free)> data(
      static_cast<float*>(std::aligned_alloc(64, size_t(n) * sizeof(float))), &std::free);
  DSV3_CHECK(data != nullptr, "cannot allocate {} bytes for the bandwidth test", bytes);
  float* p = data.get();
  const int nt = std::min(threads, num_threads());
  std::vector<double> partial(size_t(nt), 0.0);
  // Each thread touches its own part first, so its pages are local to it.
  parallel_chunks(nt, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) std::fill(p + n * t / nt, p + n * (t + 1) / nt, 1.0f);
  });
  BandwidthResult best;
  for (int pass = 0; pass < passes; ++pass) {
    Timer timer;
    parallel_chunks(nt, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) partial[size_t(t)] = read_sum(p + n * t / nt, n * (t + 1) / nt - n * t / nt);
    });
    const double s = timer.seconds();
    if (best.seconds == 0.0 || s < best.seconds) {
      best.seconds = s;
      best.gb_per_s = double(n) * sizeof(float) / s * 1e-9;
      best.checksum = 0.0;
      for (double v : partial) best.checksum += v;
    }
  }
  return best;
}

}  // namespace dsv3::kernels
