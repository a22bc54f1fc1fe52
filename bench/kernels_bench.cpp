// Kernel micro-benchmarks, each beside its yardstick in the same run:
//   matmul decode (T = 1, 4, 8): GB/s of weights streamed, against membw/read_1GiB;
//   matmul prefill (T = 512): GFLOP/s, against the FMA peak (~90 GFLOP/s per core here);
//   FP32 GEMM at the tiny-train shapes (8 x 256 tokens; dims 256 / 768 / 8192) and 1024^3:
//   GFLOP/s against OpenBLAS cblas_sgemm (DSV3_HAVE_BLAS), same threads.
// Decode weights rotate through a 768 MiB pool (larger than the 480 MiB L3) so every call streams
// from DRAM, as a model's layers do. Each GEMM runs with dsv3 then OpenBLAS on the same shape and
// thread count (OpenBLAS threads set to match through openblas_set_num_threads).
//   ./build/bench/dsv3_bench --benchmark_min_time=0.3 --benchmark_filter=matmul|gemm
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/numeric.h"
#include "core/parallel_for.h"
#include "bench_util.h"
#include "core/rng.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"

#ifdef DSV3_HAVE_BLAS
#include <cblas.h>
#endif

namespace dsv3::kernels {
namespace {

constexpr int64_t kPoolBytes = int64_t(768) << 20;

// Valid BF16 values (N(0,1)) whose bytes also read as FP8 codes: one random 1 MiB block repeated.
const uint8_t* weight_pool() {
  static const auto pool = [] {
    std::unique_ptr<uint8_t, decltype(&std::free)> p(static_cast<uint8_t*>(std::aligned_alloc(64, size_t(kPoolBytes))),
                                                     &std::free);
    const int64_t block = int64_t(1) << 20;
    Rng rng(1);
    for (int64_t i = 0; i < block / 2; ++i) {
      const uint16_t b = f32_to_bf16(rng.next_normal());
      std::memcpy(p.get() + 2 * i, &b, 2);
    }
    for (int64_t off = block; off < kPoolBytes; off += block) std::memcpy(p.get() + off, p.get(), size_t(block));
    return p;
  }();
  return pool.get();
}

struct PathGuard {
  explicit PathGuard(KernelPath p) : saved(kernel_path()) { set_kernel_path(p); }
  ~PathGuard() { set_kernel_path(saved); }
  KernelPath saved;
};

// y (T, N) = x (T, K) · Wᵀ with W (N, K) in `dtype`, a new copy of W from the pool every call.
void bench_matmul(benchmark::State& state, DType dtype, int64_t N, int64_t K, int64_t T, int threads,
                  KernelPath path) {
  bench::set_threads(threads);
  PathGuard guard(path);
  const int64_t wbytes = N * K * int64_t(dtype_size(dtype));
  const int64_t copies = std::max<int64_t>(1, kPoolBytes / wbytes);
  const uint8_t* pool = weight_pool();
  std::vector<float> scales(size_t(((N + 127) / 128) * ((K + 127) / 128)), 1.0f / 448.0f);
  const std::vector<float> x = bench::random_normals(T * K, 2);
  std::vector<float> y(size_t(T * N));
  WeightMatrix w;
  w.dtype = dtype;
  w.rows = N;
  w.cols = K;
  w.scale_inv = scales.data();
  int64_t i = 0;
  for (auto _ : state) {
    w.data = pool + (i++ % copies) * wbytes;
    matmul(y.data(), x.data(), w, T);
    benchmark::ClobberMemory();
  }
  const double it = double(state.iterations());
  state.counters["GBs"] = benchmark::Counter(double(w.bytes()) * 1e-9 * it, benchmark::Counter::kIsRate);
  state.counters["GFLOPs"] = benchmark::Counter(2e-9 * double(T * N * K) * it, benchmark::Counter::kIsRate);
}

enum class Impl { kDsv3, kOpenBlas };

void bench_gemm(benchmark::State& state, int64_t M, int64_t N, int64_t K, Op op_a, Op op_b, int threads, Impl impl,
                KernelPath path) {
  bench::set_threads(threads);
  PathGuard guard(path);
  const int64_t lda = op_a == Op::N ? K : M, ldb = op_b == Op::N ? N : K;
  const std::vector<float> a = bench::random_normals(M * K, 3), b = bench::random_normals(K * N, 4);
  std::vector<float> c(size_t(M * N));
  for (auto _ : state) {
    if (impl == Impl::kDsv3) {
      gemm(c.data(), N, a.data(), lda, op_a, b.data(), ldb, op_b, M, N, K, false);
    } else {
#ifdef DSV3_HAVE_BLAS
      cblas_sgemm(CblasRowMajor, op_a == Op::N ? CblasNoTrans : CblasTrans, op_b == Op::N ? CblasNoTrans : CblasTrans,
                  int(M), int(N), int(K), 1.0f, a.data(), int(lda), b.data(), int(ldb), 0.0f, c.data(), int(N));
#endif
    }
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPs"] =
      benchmark::Counter(2e-9 * double(M * N * K) * double(state.iterations()), benchmark::Counter::kIsRate);
}

struct GemmShape {
  const char* name;
  int64_t M, N, K;
  Op op_a, op_b;
};

// tiny-train: 2048 tokens, dim 256, MLA/FFN width 768, vocab 8192. y = x·Wᵀ forward,
// dx = dy·W, dW = dyᵀ·x backward.
constexpr GemmShape kGemmShapes[] = {
    {"fwd_x.Wt_2048x768x256", 2048, 768, 256, Op::N, Op::T},
    {"fwd_x.Wt_2048x256x768", 2048, 256, 768, Op::N, Op::T},
    {"fwd_head_2048x8192x256", 2048, 8192, 256, Op::N, Op::T},
    {"dgrad_dy.W_2048x256x768", 2048, 256, 768, Op::N, Op::N},
    {"dgrad_dy.W_2048x768x256", 2048, 768, 256, Op::N, Op::N},
    {"dgrad_head_2048x256x8192", 2048, 256, 8192, Op::N, Op::N},
    {"wgrad_dyt.x_768x256x2048", 768, 256, 2048, Op::T, Op::N},
    {"wgrad_dyt.x_256x768x2048", 256, 768, 2048, Op::T, Op::N},
    {"wgrad_head_8192x256x2048", 8192, 256, 2048, Op::T, Op::N},
    {"issue_512x768x256", 512, 768, 256, Op::N, Op::T},
    {"square_1024", 1024, 1024, 1024, Op::N, Op::N},
};

std::string threads_tag(int t) { return "/threads:" + std::to_string(t); }

int register_all() {
  const KernelPath fast = cpu_supports_avx512() ? KernelPath::kAvx512
                          : cpu_supports_avx2()  ? KernelPath::kAvx2
                                                 : KernelPath::kPortable;
  struct MatmulShape {
    const char* name;
    int64_t N, K;
  };
  const MatmulShape shapes[] = {{"1024x1024", 1024, 1024}, {"2816x1024", 2816, 1024}, {"head_32768x1024", 32768, 1024}};
  for (DType dtype : {DType::BF16, DType::F8_E4M3}) {
    for (const MatmulShape& s : shapes) {
      for (int64_t T : {1, 4, 8}) {
        for (int threads : {1, 2}) {
          const std::string name = "matmul/decode/" + std::string(dtype_name(dtype)) + "/T:" + std::to_string(T) + "/" +
                                   s.name + threads_tag(threads);
          benchmark::RegisterBenchmark(name.c_str(), bench_matmul, dtype, s.N, s.K, T, threads, fast)
              ->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
      }
    }
    for (int threads : {1, 2}) {
      const std::string name = "matmul/prefill/" + std::string(dtype_name(dtype)) + "/T:512/2816x1024" + threads_tag(threads);
      benchmark::RegisterBenchmark(name.c_str(), bench_matmul, dtype, 2816, 1024, 512, threads, fast)
          ->UseRealTime()->Unit(benchmark::kMillisecond);
    }
    const std::string pname = "matmul/decode_portable/" + std::string(dtype_name(dtype)) + "/T:1/2816x1024/threads:2";
    benchmark::RegisterBenchmark(pname.c_str(), bench_matmul, dtype, 2816, 1024, 1, 2, KernelPath::kPortable)
        ->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("matmul/prefill_portable/BF16/T:512/2816x1024/threads:2", bench_matmul, DType::BF16,
                               2816, 1024, 512, 2, KernelPath::kPortable)
      ->UseRealTime()->Unit(benchmark::kMillisecond);
  // Each OpenBLAS run right after the dsv3 run of the same shape and threads, so their ratio is
  // measured under the same machine load.
  for (const GemmShape& s : kGemmShapes) {
    for (int threads : {2, 1}) {
      for (Impl impl : {Impl::kDsv3, Impl::kOpenBlas}) {
#ifndef DSV3_HAVE_BLAS
        if (impl == Impl::kOpenBlas) continue;
#endif
        const std::string name =
            std::string(impl == Impl::kDsv3 ? "gemm/dsv3/" : "gemm/openblas/") + s.name + threads_tag(threads);
        benchmark::RegisterBenchmark(name.c_str(), bench_gemm, s.M, s.N, s.K, s.op_a, s.op_b, threads, impl, fast)
            ->UseRealTime()->Unit(benchmark::kMillisecond);
        if (impl == Impl::kDsv3 && fast == KernelPath::kAvx512) {  // the 6 x 16 AVX2 tiles, for the ratio
          const std::string narrow = "gemm/dsv3_avx2/" + std::string(s.name) + threads_tag(threads);
          benchmark::RegisterBenchmark(narrow.c_str(), bench_gemm, s.M, s.N, s.K, s.op_a, s.op_b, threads, impl,
                                       KernelPath::kAvx2)
              ->UseRealTime()->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
  benchmark::RegisterBenchmark("gemm/dsv3_portable/square_1024/threads:2", bench_gemm, 1024, 1024, 1024, Op::N, Op::N,
                               2, Impl::kDsv3, KernelPath::kPortable)
      ->UseRealTime()->Unit(benchmark::kMillisecond);
  return 0;
}

const int registered = register_all();

}  // namespace
}  // namespace dsv3::kernels
