// The GEMM-based absorbed-MLA attention against its one-query-one-key twin, over edge shapes:
// query blocks of 1..70 tokens (the fast path tiles by 64), starts inside and at page
// boundaries, odd head counts and dimensions, 1-token and odd-sized pages. Cache rows past the
// sequence are NaN (FlashMLA's trick): any out-of-bounds read poisons the output.
//
// The decode kernel walks the cache in 64-key blocks; its outputs do not depend on the blocks
// (the same FMA chains), and the 1-vs-2-thread forward tests check those bits. Its AVX-512 twin
// must give the AVX2 kernel's bits exactly.
//
// Tolerance: the scaled scores are O(1) sums of r + d_r <= 288 products of N(0,1) values times
// 1/sqrt(r + d_r); two summation orders of K f32 terms differ by about sqrt(K)·eps·sqrt(Σ terms²)
// ≈ 17·6e-8·1 ≈ 1e-6, and outputs are convex combinations of O(1) rows: ~1e-5 at most; 1e-4 absolute.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_paths.h"

namespace dsv3::kernels {
namespace {

struct Case {
  int64_t S, start, H, r, dr, page;
};

TEST(MlaAttention, GemmPathMatchesTwin) {
  const Case cases[] = {{1, 0, 1, 8, 2, 4},    {1, 37, 16, 32, 8, 16}, {7, 0, 3, 20, 6, 5},  {9, 13, 3, 17, 4, 1},
                        {64, 0, 2, 16, 4, 64}, {65, 3, 2, 15, 3, 7},   {70, 64, 5, 9, 2, 64}, {17, 128, 1, 33, 6, 128},
                        // decode-sized blocks (the AVX2 decode kernel): key counts around its
                        // 4-key groups, latent dims around its 8- and 32-wide chunks, odd heads
                        {1, 0, 16, 256, 32, 64}, {1, 574, 16, 256, 32, 64}, {1, 6, 3, 31, 1, 3},
                        {2, 7, 5, 32, 8, 8},     {3, 126, 7, 33, 7, 128},   {8, 120, 4, 64, 0, 16},
                        {8, 1, 1, 7, 1, 2},      {5, 15, 2, 40, 24, 9},
                        // contexts over several of its 64-key blocks, ending inside one
                        {1, 200, 16, 256, 32, 64}, {2, 127, 5, 33, 7, 16}, {4, 190, 9, 24, 8, 32},
                        // groups of four whose latent row is not a multiple of 8 (scalar tails)
                        {1, 100, 8, 33, 6, 16},    {3, 70, 4, 70, 3, 8}};
  Rng rng(42);
  const std::vector<KernelPath> paths = testing::available_paths();
  for (const Case& c : cases) {
    const int64_t T = c.start + c.S, row = c.r + c.dr;
    const int64_t pages = (T + c.page - 1) / c.page + 1;  // one spare page, fully poisoned
    std::vector<float> storage(size_t(pages * c.page * row), std::numeric_limits<float>::quiet_NaN());
    std::vector<float*> ptrs;
    for (int64_t p = 0; p < pages; ++p) ptrs.push_back(storage.data() + p * c.page * row);
    LatentCacheView view{ptrs.data(), c.page, row, 0, pages * c.page};
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < row; ++j) view.row(t)[j] = rng.next_normal();
    std::vector<float> q(size_t(c.S * c.H * row));
    for (auto& v : q) v = rng.next_normal();
    std::vector<float> want(size_t(c.S * c.H * c.r)), got(want.size());
    const float scale = 1.0f / std::sqrt(float(row));
    mla_attention_latent_ref(want.data(), q.data(), view, c.S, c.H, c.r, c.dr, c.start, scale);
    std::vector<float> avx2_bits;
    for (KernelPath path : paths) {
      testing::ScopedKernelPath scoped(path);
      std::fill(got.begin(), got.end(), -1.0f);
      mla_attention_latent(got.data(), q.data(), view, c.S, c.H, c.r, c.dr, c.start, scale);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-4) << "S=" << c.S << " start=" << c.start << " H=" << c.H << " i=" << i
                                           << " path=" << kernel_path_name(path);
      }
      // The AVX-512 decode kernels compute the AVX2 kernels' FMA chains: the same bits.
      if (path == KernelPath::kAvx2) avx2_bits = got;
      if (path == KernelPath::kAvx512 && !avx2_bits.empty()) {
        ASSERT_EQ(std::memcmp(got.data(), avx2_bits.data(), got.size() * sizeof(float)), 0)
            << "S=" << c.S << " start=" << c.start << " H=" << c.H;
      }
    }
  }
}

}  // namespace
}  // namespace dsv3::kernels
