// Decode attention over the latent cache (mla_attention_latent, S = 1) at bench-small's shape:
// 16 heads, r = 256, d_r = 32, 64-token pages, contexts of 512 and 2048 tokens (0.6 and 2.4 MB of
// cache per layer). GFLOP/s counts 2·H·n·(r + d_r) for the scores and 2·H·n·r for the weighted
// sum; the AVX2 run of the same case is the yardstick for the AVX-512 kernels (same bits).
//   ./build/bench/dsv3_bench --benchmark_filter=attention
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kernels/attention.h"
#include "kernels/dispatch.h"

namespace dsv3::kernels {
namespace {

constexpr int64_t kHeads = 16, kLatent = 256, kRope = 32, kPage = 64;

void bench_mla_decode(benchmark::State& state, int64_t context, int threads, KernelPath path) {
  const KernelPath saved = kernel_path();
  set_kernel_path(path);
  bench::set_threads(threads);
  const int64_t row = kLatent + kRope, pages = (context + kPage - 1) / kPage;
  std::vector<float> storage = bench::random_normals(pages * kPage * row, 1);
  std::vector<float*> ptrs;
  for (int64_t p = 0; p < pages; ++p) ptrs.push_back(storage.data() + p * kPage * row);
  const LatentCacheView cache{ptrs.data(), kPage, row, 0, pages * kPage};
  const std::vector<float> q = bench::random_normals(kHeads * row, 2);
  std::vector<float> o(size_t(kHeads * kLatent));
  const float scale = 1.0f / std::sqrt(float(row));
  for (auto _ : state) {
    mla_attention_latent(o.data(), q.data(), cache, 1, kHeads, kLatent, kRope, context - 1, scale);
    benchmark::DoNotOptimize(o.data());
  }
  const double flops = 2.0 * kHeads * double(context) * double(row + kLatent);
  state.counters["GFLOPs"] = benchmark::Counter(flops * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
  set_kernel_path(saved);
}

int register_all() {
  std::vector<KernelPath> paths;
  if (cpu_supports_avx512()) paths.push_back(KernelPath::kAvx512);
  if (cpu_supports_avx2()) paths.push_back(KernelPath::kAvx2);
  for (int64_t context : {512, 2048}) {
    for (int threads : {1, 2}) {
      for (KernelPath path : paths) {
        const std::string name = "attention/mla_decode_" + std::string(kernel_path_name(path)) +
                                 "/ctx:" + std::to_string(context) + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), bench_mla_decode, context, threads, path)
            ->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
    }
  }
  return 0;
}

const int registered = register_all();

}  // namespace
}  // namespace dsv3::kernels
