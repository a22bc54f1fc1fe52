// A decode-shaped weight product allocates nothing on the heap (house rule 3): it counts
// operator new calls (support/alloc_counter.h) around matmul and matmul_t with T = 1..8 on every path and
// weight type, after one warm-up call (thread pool start-up and one-time tables may allocate).
#include <gtest/gtest.h>

#include <vector>

#include "kernels/kernel_paths.h"
#include "kernels/matmul.h"
#include "kernels/weights_fixture.h"
#include "support/alloc_counter.h"

namespace dsv3::kernels {
namespace {

TEST(MatmulAlloc, DecodeAllocatesNothing) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3}) {
    const testing::OwnedWeights w = testing::random_weights(dtype, 300, 263, 1);
    const std::vector<float> x = testing::random_floats(8 * 263, 2);
    const std::vector<float> xt = testing::random_floats(8 * 300, 3);
    std::vector<float> y(8 * 300), yt(8 * 263);
    testing::for_each_path([&](KernelPath) {
      for (int64_t T = 1; T <= 8; ++T) {
        matmul(y.data(), x.data(), w.view(), T);  // warm-up
        matmul_t(yt.data(), 263, xt.data(), 300, w.view(), T);
        dsv3::testing::AllocationCounter counter;
        matmul(y.data(), x.data(), w.view(), T);
        matmul_t(yt.data(), 263, xt.data(), 300, w.view(), T);
        EXPECT_EQ(counter.count(), 0) << dtype_name(dtype) << " T=" << T;
      }
    });
  }
}

// The counter itself works (so a zero above means something).
TEST(MatmulAlloc, CounterSeesAllocations) {
  int64_t n = 0;
  {
    dsv3::testing::AllocationCounter counter;
    auto* v = new std::vector<float>(100);
    n = counter.count();
    delete v;
  }
  EXPECT_GE(n, 2);
}

}  // namespace
}  // namespace dsv3::kernels
