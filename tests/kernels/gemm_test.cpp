// FP32 GEMM (kernels/gemm.h) against gemm_ref (double accumulation) for all four transpose
// combinations, both accumulate modes, odd leading dimensions and edge shapes around the
// micro-tile (6 x 16), the vector width and the cache blocks (KC = 256, MC = 144, NC = 1024).
//
// Tolerance, as for matmul (matmul_test.cpp): at most K + 3 roundings of partial sums, one for
// adding the old C, one for the twin's final cast:
//     |c - c_ref| <= (K + 5) * 2^-24 * (sum_k |a_mk b_kn| + |c_old|),
// allowed twice over.
#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel_for.h"
#include "kernels/kernel_paths.h"
#include "kernels/weights_fixture.h"

namespace dsv3::kernels {
namespace {

using testing::random_floats;

struct Operands {
  int64_t M, N, K, lda, ldb, ldc;
  Op op_a, op_b;
  std::vector<float> a, b, c0;
};

Operands make_operands(int64_t M, int64_t N, int64_t K, Op op_a, Op op_b, uint64_t seed) {
  Operands o{M, N, K, 0, 0, N + 3, op_a, op_b, {}, {}, {}};
  const int64_t a_rows = op_a == Op::N ? M : K, a_cols = op_a == Op::N ? K : M;
  const int64_t b_rows = op_b == Op::N ? K : N, b_cols = op_b == Op::N ? N : K;
  o.lda = a_cols + 1;
  o.ldb = b_cols + 5;
  o.a = random_floats(std::max<int64_t>(1, a_rows * o.lda), seed);
  o.b = random_floats(std::max<int64_t>(1, b_rows * o.ldb), seed + 1);
  o.c0 = random_floats(M * o.ldc, seed + 2);
  return o;
}

void check_gemm(const Operands& o, bool accumulate, const std::vector<KernelPath>& paths) {
  std::vector<float> ref = o.c0;
  gemm_ref(ref.data(), o.ldc, o.a.data(), o.lda, o.op_a, o.b.data(), o.ldb, o.op_b, o.M, o.N, o.K, accumulate);
  std::vector<float> bound(size_t(o.M * o.N));
  for (int64_t m = 0; m < o.M; ++m) {
    for (int64_t n = 0; n < o.N; ++n) {
      double s = accumulate ? std::fabs(o.c0[size_t(m * o.ldc + n)]) : 0.0;
      for (int64_t k = 0; k < o.K; ++k) {
        const float av = o.op_a == Op::N ? o.a[size_t(m * o.lda + k)] : o.a[size_t(k * o.lda + m)];
        const float bv = o.op_b == Op::N ? o.b[size_t(k * o.ldb + n)] : o.b[size_t(n * o.ldb + k)];
        s += std::fabs(double(av) * bv);
      }
      bound[size_t(m * o.N + n)] = float(double(o.K + 5) * 0x1p-23 * s);
    }
  }
  for (KernelPath path : paths) {
    testing::ScopedKernelPath scoped(path);
    std::vector<float> c = o.c0;
    gemm(c.data(), o.ldc, o.a.data(), o.lda, o.op_a, o.b.data(), o.ldb, o.op_b, o.M, o.N, o.K, accumulate);
    int bad = 0;
    for (int64_t m = 0; m < o.M; ++m) {
      for (int64_t n = 0; n < o.ldc; ++n) {
        const size_t i = size_t(m * o.ldc + n);
        const bool ok = n >= o.N ? c[i] == o.c0[i] : std::fabs(c[i] - ref[i]) <= bound[size_t(m * o.N + n)];
        if (!ok && ++bad <= 5) {
          ADD_FAILURE() << kernel_path_name(path) << " op_a=" << (o.op_a == Op::N ? "N" : "T")
                        << " op_b=" << (o.op_b == Op::N ? "N" : "T") << " M=" << o.M << " N=" << o.N << " K=" << o.K
                        << " acc=" << accumulate << " at (" << m << ", " << n << "): got " << c[i] << " want "
                        << ref[i];
        }
      }
    }
  }
}

constexpr Op kOps[] = {Op::N, Op::T};

TEST(Gemm, EdgeShapesAllTransposesEveryPath) {
  const auto paths = testing::available_paths();
  for (Op op_a : kOps) {
    for (Op op_b : kOps) {
      for (int64_t M : {1, 5, 6, 7, 13, 17}) {
        for (int64_t N : {1, 7, 8, 9, 15, 16, 17, 33}) {
          for (int64_t K : {0, 1, 7, 8, 9, 17, 127, 128, 129}) {
            const Operands o = make_operands(M, N, K, op_a, op_b, uint64_t(M * 1000 + N * 10 + K));
            check_gemm(o, false, paths);
            check_gemm(o, true, paths);
          }
        }
      }
    }
  }
}

// Past every cache block: M > MC, K > 2 KC, N > NC (and the other split of threads, N > M).
TEST(Gemm, LargeShapesCrossCacheBlocks) {
  const auto paths = testing::available_paths();
  for (Op op_a : kOps) {
    for (Op op_b : kOps) {
      check_gemm(make_operands(150, 40, 530, op_a, op_b, 1), true, paths);
      check_gemm(make_operands(20, 1100, 300, op_a, op_b, 2), false, paths);
    }
  }
}

TEST(Gemm, OneAndTwoThreadsBitIdentical) {
  const int saved = num_threads();
  for (Op op_a : kOps) {
    for (Op op_b : kOps) {
      for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{200, 77, 300}, {31, 250, 129}}) {
        const Operands o = make_operands(M, N, K, op_a, op_b, 3);
        testing::for_each_path([&](KernelPath) {
          std::vector<float> c1 = o.c0, c2 = o.c0;
          set_num_threads(1);
          gemm(c1.data(), o.ldc, o.a.data(), o.lda, op_a, o.b.data(), o.ldb, op_b, M, N, K, true);
          set_num_threads(2);
          gemm(c2.data(), o.ldc, o.a.data(), o.lda, op_a, o.b.data(), o.ldb, op_b, M, N, K, true);
          EXPECT_EQ(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)), 0) << M << "x" << N << "x" << K;
        });
      }
    }
  }
  set_num_threads(saved);
}

// The AVX-512 micro-kernel (12 x 32 tiles) sums each element in the AVX2 kernel's order: bitwise
// equal results, over shapes that mix wide tiles with 6 x 16 and edge tiles.
TEST(Gemm, Avx512TilesBitwiseEqualAvx2Tiles) {
  if (!cpu_supports_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (Op op_a : kOps) {
    for (Op op_b : kOps) {
      for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{12, 32, 1}, {13, 33, 17}, {24, 64, 256},
                             {150, 100, 530}, {31, 1100, 129}, {7, 40, 9}}) {
        const Operands o = make_operands(M, N, K, op_a, op_b, 11);
        std::vector<float> narrow = o.c0, wide = o.c0;
        {
          testing::ScopedKernelPath scoped(KernelPath::kAvx2);
          gemm(narrow.data(), o.ldc, o.a.data(), o.lda, op_a, o.b.data(), o.ldb, op_b, M, N, K, true);
        }
        {
          testing::ScopedKernelPath scoped(KernelPath::kAvx512);
          gemm(wide.data(), o.ldc, o.a.data(), o.lda, op_a, o.b.data(), o.ldb, op_b, M, N, K, true);
        }
        EXPECT_EQ(std::memcmp(narrow.data(), wide.data(), narrow.size() * sizeof(float)), 0)
            << M << "x" << N << "x" << K;
      }
    }
  }
}

}  // namespace
}  // namespace dsv3::kernels
