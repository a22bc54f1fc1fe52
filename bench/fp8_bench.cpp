// FP8 GEMM throughput at the tiny-train Linear shapes (T = 2048 tokens), beside FP32 yardsticks in
// the same run:
//   fp8_gemm     the AVX2 FP8 GEMM (E4M3 operands, 1x128 / 128x128 / 128x1 scales, promotion every 128)
//   fp8_twin     its plain twin (same bits), on the smallest shape only: the price of the spec loop
//   bf16_gemm    the same blocked kernel on f32 operands (the BF16 recipe's GEMM): FP32 arithmetic
//   sgemm        OpenBLAS cblas_sgemm (DSV3_HAVE_BLAS), the FP32 reference
//   fp8_quant    the quantizers one Linear step runs (x 1x128, W 128x128, dy 1x128 and 128x1,
//                x re-tiled 128x1), in elements per second
// Each Linear (N, K) runs its three GEMMs: fprop (T, N, K), dgrad (T, K, N), wgrad (N, K, T).
// GFLOP/s = 2·M·N·K / time. OpenBLAS runs last so its spinning threads cannot steal cores.
//   ./build/bench/dsv3_bench --benchmark_filter=fp8 --benchmark_min_time=0.3
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/parallel_for.h"
#include "bench_util.h"
#include "core/rng.h"
#include "kernels/fp8_gemm.h"
#include "kernels/fp8_quant.h"

#ifdef DSV3_HAVE_BLAS
#include <cblas.h>
#endif

namespace dsv3::kernels {
namespace {

constexpr int64_t kTokens = 2048;

void count_flops(benchmark::State& state, int64_t M, int64_t N, int64_t K) {
  state.counters["GFLOP"] = benchmark::Counter(2e-9 * double(M * N * K) * double(state.iterations()),
                                               benchmark::Counter::kIsRate);
}

// C (M, N) = A (M, K) · B (K, N) with FP8 operands: A in 1x128 tiles, B in 128x128 blocks
// (fprop / dgrad) or 128x1 tiles (wgrad; accumulating, as Wgrad does).
void bench_fp8(benchmark::State& state, int64_t M, int64_t N, int64_t K, bool col_tiles, bool twin) {
  bench::set_threads(int(state.range(0)));
  const auto a = bench::random_normals(M * K, 1), b = bench::random_normals(K * N, 2);
  std::vector<uint8_t> aq(a.size()), bq(b.size());
  std::vector<float> as(size_t(M * fp8_groups(K))), bs(size_t(fp8_groups(K) * (col_tiles ? N : fp8_groups(N))));
  quantize_1x128(aq.data(), as.data(), a.data(), M, K, K, ScaleFmt::kF32);
  Fp8Rhs rhs;
  if (col_tiles) {
    quantize_128x1(bq.data(), bs.data(), b.data(), K, N, N, ScaleFmt::kF32);
    rhs = col_tiles_rhs(bq.data(), bs.data(), K, N);
  } else {  // B (K, N) is a weight stored (K, N): the Dgrad view; Fprop's view differs only in indexing
    quantize_128x128(bq.data(), bs.data(), b.data(), K, N, ScaleFmt::kF32);
    rhs = dgrad_rhs(Fp8WeightView{bq.data(), nullptr, bs.data(), K, N});
  }
  const Fp8Lhs lhs{aq.data(), as.data(), M, K};
  std::vector<float> c(size_t(M * N), 0.0f);
  for (auto _ : state) {
    if (twin) {
      fp8_gemm_ref(c.data(), N, lhs, rhs, col_tiles);
    } else {
      fp8_gemm(c.data(), N, lhs, rhs, col_tiles);
    }
    benchmark::DoNotOptimize(c.data());
  }
  count_flops(state, M, N, K);
}

void bench_bf16(benchmark::State& state, int64_t M, int64_t N, int64_t K) {
  bench::set_threads(int(state.range(0)));
  const auto a = bench::random_normals(M * K, 1), b = bench::random_normals(K * N, 2);
  std::vector<float> c(size_t(M * N));
  for (auto _ : state) {
    bf16_gemm(c.data(), N, a.data(), b.data(), M, N, K, false);
    benchmark::DoNotOptimize(c.data());
  }
  count_flops(state, M, N, K);
}

#ifdef DSV3_HAVE_BLAS
void bench_sgemm(benchmark::State& state, int64_t M, int64_t N, int64_t K) {
  bench::set_threads(int(state.range(0)));
  const auto a = bench::random_normals(M * K, 1), b = bench::random_normals(K * N, 2);
  std::vector<float> c(size_t(M * N));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(N), int(K), 1.0f, a.data(), int(K), b.data(),
                int(N), 0.0f, c.data(), int(N));
    benchmark::DoNotOptimize(c.data());
  }
  count_flops(state, M, N, K);
}
#endif

// The quantization work of one FP8 Linear step with x (T, K), W (N, K), dy (T, N).
void bench_quant(benchmark::State& state, int64_t N, int64_t K) {
  bench::set_threads(int(state.range(0)));
  const int64_t T = kTokens;
  const auto x = bench::random_normals(T * K, 1), w = bench::random_normals(N * K, 2), dy = bench::random_normals(T * N, 3);
  std::vector<uint8_t> q1(size_t(T * K)), q2(size_t(T * K)), qw(size_t(N * K)), qd(size_t(T * N)), qdt(size_t(T * N));
  std::vector<float> s1(size_t(T * fp8_groups(K))), s2(size_t(fp8_groups(T) * K)),
      sw(size_t(fp8_groups(N) * fp8_groups(K))), sd(size_t(T * fp8_groups(N))), sdt(size_t(N * fp8_groups(T)));
  for (auto _ : state) {
    quantize_128x128(qw.data(), sw.data(), w.data(), N, K, ScaleFmt::kF32);
    quantize_1x128(q1.data(), s1.data(), x.data(), T, K, K, ScaleFmt::kF32);
    quantize_1x128(qd.data(), sd.data(), dy.data(), T, N, N, ScaleFmt::kF32);
    quantize_128x1_transposed(qdt.data(), sdt.data(), dy.data(), T, N, N, ScaleFmt::kF32);
    requantize_1x128_to_128x1(q2.data(), s2.data(), q1.data(), s1.data(), T, K, ScaleFmt::kF32);
    benchmark::DoNotOptimize(q2.data());
  }
  state.counters["Melem"] = benchmark::Counter(1e-6 * double(N * K + 3 * T * K + 2 * T * N) * double(state.iterations()),
                                               benchmark::Counter::kIsRate);
}

struct LinearShape {
  int64_t N, K;
};
const LinearShape kShapes[] = {{768, 256}, {256, 768}, {256, 128}};

void register_all() {
  for (const LinearShape& s : kShapes) {
    const std::string lin = std::to_string(s.N) + "x" + std::to_string(s.K);
    struct Gemm {
      const char* name;
      int64_t M, N, K;
      bool cols;
    };
    const Gemm gemms[] = {{"fprop", kTokens, s.N, s.K, false},
                          {"dgrad", kTokens, s.K, s.N, false},
                          {"wgrad", s.N, s.K, kTokens, true}};
    for (const Gemm& g : gemms) {
      const std::string tag = lin + "/" + g.name;
      benchmark::RegisterBenchmark(("fp8_gemm/" + tag).c_str(), bench_fp8, g.M, g.N, g.K, g.cols, false)
          ->Arg(1)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("fp8_bf16_gemm/" + tag).c_str(), bench_bf16, g.M, g.N, g.K)
          ->Arg(1)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark(("fp8_quant/" + lin).c_str(), bench_quant, s.N, s.K)
        ->Arg(1)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("fp8_twin/256x128/fprop", bench_fp8, kTokens, 256, 128, false, true)
      ->Arg(1)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
#ifdef DSV3_HAVE_BLAS
  for (const LinearShape& s : kShapes) {
    const std::string lin = std::to_string(s.N) + "x" + std::to_string(s.K);
    benchmark::RegisterBenchmark(("fp8_sgemm/" + lin + "/fprop").c_str(), bench_sgemm, kTokens, s.N, s.K)
        ->Arg(1)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("fp8_sgemm/" + lin + "/dgrad").c_str(), bench_sgemm, kTokens, s.K, s.N)
        ->Arg(1)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("fp8_sgemm/" + lin + "/wgrad").c_str(), bench_sgemm, s.N, s.K, kTokens)
        ->Arg(1)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
  }
#endif
}

const bool kRegistered = (register_all(), true);

}  // namespace
}  // namespace dsv3::kernels
