// The weight products (kernels/matmul.h) against their double-precision twins, on every path,
// for every weight type, over edge shapes around the vector width (8), the micro-tile (6 x 16),
// the FP8 block (128) and the cache blocks (KC = 256, MC = 144, NC = 1024), with odd strides and
// row-slice views whose first row is not a multiple of 128.
//
// Tolerance. Each output is a sum of K products x_k * w_k. The fast paths round each dequantized
// weight once (FP8: code times scale), each product-add once (FMA) and the partial sums a fixed
// number of times (at most K + 3 roundings along any path through the summation tree, including
// the 8-lane horizontal sum and the sums of KC slices); the twin rounds only its final cast. The
// standard bound |fl(sum) - sum| <= n*u*sum|terms| (u = 2^-24, n*u << 1) with n = K + 5 gives
//     |y - y_ref| <= (K + 5) * 2^-24 * sum_k |x_k w_k|,
// and the tests allow twice that: (K + 5) * 2^-23 * sum_k |x_k w_k|. A wrong block scale, a
// dropped or doubled term, or a wrong row is orders of magnitude above this (a single term is
// about sum/K).
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/numeric.h"
#include "core/parallel_for.h"
#include "kernels/kernel_paths.h"
#include "kernels/weights_fixture.h"

namespace dsv3::kernels {
namespace {

using testing::OwnedWeights;
using testing::random_floats;
using testing::random_weights;

constexpr DType kTypes[] = {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3};
constexpr float kSentinel = -12345.0f;

struct Problem {
  int64_t T, N, K;  // tokens, output features, input features
};

// y = x · Wᵀ (transposed = false) or y = x · W (true), checked element by element against the twin
// with the bound above; the padding of y (stride > width) must stay untouched.
void check_product(const WeightMatrix& w, int64_t T, bool transposed, const std::vector<KernelPath>& paths) {
  const int64_t K = transposed ? w.rows : w.cols, N = transposed ? w.cols : w.rows;
  const int64_t ldx = K + 5, ldy = N + 3;  // odd strides
  const std::vector<float> x = random_floats(T * ldx, uint64_t(T * 1000003 + K * 101 + N));
  std::vector<float> ref(size_t(T * ldy), kSentinel), bound(size_t(T * N));
  using Product = void (*)(float*, int64_t, const float*, int64_t, const WeightMatrix&, int64_t);
  const Product ref_fn = transposed ? matmul_t_ref : matmul_ref;
  const Product fast_fn = transposed ? matmul_t : static_cast<Product>(matmul);
  ref_fn(ref.data(), ldy, x.data(), ldx, w, T);
  std::vector<double> wabs(size_t(N * K));  // |W| as (N, K) whichever way the product reads it
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) wabs[size_t(n * K + k)] = std::fabs(transposed ? w.at(k, n) : w.at(n, k));
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) s += std::fabs(double(x[t * ldx + k])) * wabs[size_t(n * K + k)];
      bound[size_t(t * N + n)] = float(double(K + 5) * 0x1p-23 * s);
    }
  }
  for (KernelPath path : paths) {
    testing::ScopedKernelPath scoped(path);
    std::vector<float> y(size_t(T * ldy), kSentinel);
    fast_fn(y.data(), ldy, x.data(), ldx, w, T);
    int bad = 0;
    for (int64_t t = 0; t < T && bad < 5; ++t) {
      for (int64_t n = 0; n < ldy; ++n) {
        const float got = y[size_t(t * ldy + n)], want = ref[size_t(t * ldy + n)];
        const bool ok = n >= N ? got == kSentinel : std::fabs(got - want) <= bound[size_t(t * N + n)];
        if (!ok && ++bad <= 5) {
          ADD_FAILURE() << kernel_path_name(path) << (transposed ? " matmul_t " : " matmul ")
                        << dtype_name(w.dtype) << " T=" << T << " N=" << N << " K=" << K << " at (" << t << ", "
                        << n << "): got " << got << " want " << want << " bound "
                        << (n < N ? bound[size_t(t * N + n)] : 0.0f);
        }
      }
    }
  }
}

TEST(Matmul, EdgeShapesEveryTypeEveryPath) {
  const auto paths = testing::available_paths();
  for (DType dtype : kTypes) {
    for (int64_t N : {1, 7, 8, 9, 16, 17, 129}) {
      for (int64_t K : {1, 7, 8, 9, 16, 17, 127, 128, 129, 300}) {
        const OwnedWeights w = random_weights(dtype, N, K, uint64_t(N * 7919 + K));
        for (int64_t T : {1, 2, 3, 4, 5, 7, 8, 9, 17}) check_product(w.view(), T, false, paths);
      }
    }
  }
}

TEST(Matmul, TransposedEdgeShapesEveryTypeEveryPath) {
  const auto paths = testing::available_paths();
  for (DType dtype : kTypes) {
    for (int64_t rows : {1, 7, 8, 9, 16, 17, 129, 300}) {
      for (int64_t cols : {1, 7, 8, 9, 15, 16, 17, 127, 128, 129}) {
        const OwnedWeights w = random_weights(dtype, rows, cols, uint64_t(rows * 31 + cols));
        for (int64_t T : {1, 2, 4, 8, 9, 17}) check_product(w.view(), T, true, paths);
      }
    }
  }
}

// Shapes that cross every cache block of the prefill path: T > MC, K > 2 KC, N > NC.
TEST(Matmul, LargeShapesCrossCacheBlocks) {
  const auto paths = testing::available_paths();
  for (DType dtype : {DType::BF16, DType::F8_E4M3}) {
    const OwnedWeights w = random_weights(dtype, 1100, 530, 99);
    check_product(w.view(), 150, false, paths);
    check_product(w.view(), 3, false, paths);
    const OwnedWeights wt = random_weights(dtype, 530, 1100, 98);
    check_product(wt.view(), 150, true, paths);
  }
}

// Row slices: the view's row 0 is stored row r0, and FP8 scales are found from r0 + r.
TEST(Matmul, RowSlicesUseTheirScaleRows) {
  const auto paths = testing::available_paths();
  for (DType dtype : kTypes) {
    const OwnedWeights w = random_weights(dtype, 400, 260, 5);
    for (auto [r0, n] : {std::pair<int64_t, int64_t>{50, 200}, {127, 2}, {128, 129}, {301, 99}, {0, 400}}) {
      const WeightMatrix s = w.view().row_slice(r0, n);
      EXPECT_EQ(s.scale_row_offset, r0);
      EXPECT_EQ(s.at(0, 5), w.view().at(r0, 5));
      EXPECT_EQ(s.at(n - 1, 259), w.view().at(r0 + n - 1, 259));
      for (int64_t T : {1, 4, 9}) check_product(s, T, false, paths);
      check_product(s, 2, true, paths);
    }
    // A slice of a slice adds the offsets.
    const WeightMatrix ss = w.view().row_slice(100, 200).row_slice(30, 100);
    EXPECT_EQ(ss.scale_row_offset, 130);
    EXPECT_EQ(ss.at(3, 200), w.view().at(133, 200));
  }
}

TEST(Matmul, BytesCountsWeightsAndScaleRowsRead) {
  const OwnedWeights w = random_weights(DType::F8_E4M3, 300, 260, 1);
  EXPECT_EQ(w.view().bytes(), 300 * 260 + 3 * 3 * 4);
  EXPECT_EQ(w.view().row_slice(100, 50).bytes(), 50 * 260 + 2 * 3 * 4);  // rows 100..149: blocks 0, 1
  EXPECT_EQ(w.view().row_slice(0, 128).bytes(), 128 * 260 + 1 * 3 * 4);
  const OwnedWeights b = random_weights(DType::BF16, 300, 260, 1);
  EXPECT_EQ(b.view().bytes(), 300 * 260 * 2);
}

// The two paths decode every finite E4M3 code identically (the F16C trick vs the table), at
// every position of a 128-column block and with several scales.
TEST(Matmul, DequantizeRowAgreesOnAllFiniteE4M3Codes) {
  OwnedWeights w = random_weights(DType::F8_E4M3, 130, 254 * 3, 3);
  for (int64_t i = 0; i < w.rows * w.cols; ++i) {
    uint8_t c = uint8_t((i * 7) % 254);
    w.data[size_t(i)] = c >= 0x7F ? uint8_t(c + 1) : c;  // 0..0x7E, 0x80..0xFE
  }
  std::vector<float> out(size_t(w.cols));
  for (int64_t r : {0, 129}) {
    for (KernelPath path : testing::available_paths()) {
      testing::ScopedKernelPath scoped(path);
      dequantize_row(out.data(), w.view(), r);
      for (int64_t c = 0; c < w.cols; ++c) {
        const uint8_t code = w.data[size_t(r * w.cols + c)];
        const float s = w.scales[size_t((r / 128) * w.view().scale_cols() + c / 128)];
        ASSERT_EQ(out[size_t(c)], e4m3_to_f32(code) * s) << kernel_path_name(path) << " code " << int(code);
      }
    }
  }
}

TEST(Matmul, DequantizeRowEveryType) {
  for (DType dtype : kTypes) {
    const OwnedWeights w = random_weights(dtype, 3, 261, 4);
    testing::for_each_path([&](KernelPath) {
      std::vector<float> out(261);
      dequantize_row(out.data(), w.view(), 2);
      for (int64_t c = 0; c < 261; ++c) ASSERT_EQ(out[size_t(c)], w.view().at(2, c)) << dtype_name(dtype);
    });
  }
}

// Static partitioning over outputs: 1 and 2 threads give the same bits, decode and prefill.
TEST(Matmul, OneAndTwoThreadsBitIdentical) {
  const int saved = num_threads();
  for (DType dtype : kTypes) {
    const OwnedWeights w = random_weights(dtype, 301, 300, 8);
    for (int64_t T : {1, 3, 8, 9, 64}) {
      const std::vector<float> x = random_floats(T * 300, 9);
      testing::for_each_path([&](KernelPath) {
        std::vector<float> y1(size_t(T * 301)), y2(y1.size()), t1(size_t(T * 300)), t2(t1.size());
        const std::vector<float> xt = random_floats(T * 301, 10);
        set_num_threads(1);
        matmul(y1.data(), x.data(), w.view(), T);
        matmul_t(t1.data(), 300, xt.data(), 301, w.view(), T);
        set_num_threads(2);
        matmul(y2.data(), x.data(), w.view(), T);
        matmul_t(t2.data(), 300, xt.data(), 301, w.view(), T);
        EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)), 0) << dtype_name(dtype) << " T=" << T;
        EXPECT_EQ(std::memcmp(t1.data(), t2.data(), t1.size() * sizeof(float)), 0) << dtype_name(dtype) << " T=" << T;
      });
    }
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace dsv3::kernels
