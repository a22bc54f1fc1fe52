// The machine's read bandwidth, the bound for decode matmul: sum a 1 GiB array (larger than any
// cache here) with 1 and 2 threads, each thread reading its own contiguous half.
//   ./build/bench/dsv3_bench --benchmark_filter=membw
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/parallel_for.h"
#include "kernels/membw.h"

namespace dsv3::kernels {
namespace {

constexpr int64_t kBytes = int64_t(1) << 30;

void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = int(state.range(0));
  set_num_threads(threads);
  const int64_t n = kBytes / int64_t(sizeof(float));
  std::unique_ptr<float, decltype(&std::free)> data(static_cast<float*>(std::aligned_alloc(64, size_t(kBytes))),
                                                    &std::free);
  float* p = data.get();
  parallel_chunks(threads, [&](int64_t b, int64_t e) {  // first touch by the reading thread
    for (int64_t t = b; t < e; ++t) std::fill(p + n * t / threads, p + n * (t + 1) / threads, 1.0f);
  });
  std::vector<double> partial(static_cast<size_t>(threads));
  for (auto _ : state) {
    parallel_chunks(threads, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) partial[size_t(t)] = read_sum(p + n * t / threads, n * (t + 1) / threads - n * t / threads);
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.counters["GBs"] = benchmark::Counter(double(kBytes) * 1e-9 * double(state.iterations()),
                                             benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReadBandwidth)->Name("membw/read_1GiB")->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// The library function `dsv3 bench` uses, for comparison with the loop above.
void BM_MeasureReadBandwidth(benchmark::State& state) {
  const int threads = int(state.range(0));
  set_num_threads(threads);
  double gbs = 0.0;
  for (auto _ : state) gbs = measure_read_bandwidth(kBytes, threads, 5).gb_per_s;
  state.counters["GBs"] = gbs;
}
BENCHMARK(BM_MeasureReadBandwidth)->Name("membw/measure_read_bandwidth_1GiB")->ArgName("threads")->Arg(1)->Arg(2)
    ->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dsv3::kernels
