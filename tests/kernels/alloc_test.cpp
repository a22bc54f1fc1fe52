// A decode-shaped weight product allocates nothing on the heap (house rule 3): this file replaces
// the global operator new with a counting one and calls matmul and matmul_t with T = 1..8 on every path and
// weight type, after one warm-up call (thread pool start-up and one-time tables may allocate).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "kernels/kernel_paths.h"
#include "kernels/matmul.h"
#include "kernels/weights_fixture.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_allocations{0};
}  // namespace

__attribute__((noinline)) void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }

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
        g_allocations = 0;
        g_counting = true;
        matmul(y.data(), x.data(), w.view(), T);
        matmul_t(yt.data(), 263, xt.data(), 300, w.view(), T);
        g_counting = false;
        EXPECT_EQ(g_allocations.load(), 0) << dtype_name(dtype) << " T=" << T;
      }
    });
  }
}

// The counter itself works (so a zero above means something).
TEST(MatmulAlloc, CounterSeesAllocations) {
  g_allocations = 0;
  g_counting = true;
  auto* v = new std::vector<float>(100);
  g_counting = false;
  delete v;
  EXPECT_GE(g_allocations.load(), 2);
}

}  // namespace
}  // namespace dsv3::kernels
