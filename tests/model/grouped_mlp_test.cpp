// grouped_mlp_forward runs many small FFNs in two parallel regions; it must give exactly what
// three separate matmuls and a SwiGLU give per FFN (the decode kernels sum each output row in an
// order fixed by K, so splitting rows across threads and FFNs cannot change a bit).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/parallel_for.h"
#include "core/rng.h"
#include "kernels/activation.h"
#include "kernels/matmul.h"
#include "model/mlp.h"
#include "model/random_weights.h"
#include "support/model_fixtures.h"

namespace dsv3 {
namespace {

// The unfused composition, as mlp_forward computes larger batches.
std::vector<float> plain_ffn(const MlpWeights& w, const float* x, int64_t n) {
  const int64_t inter = w.w1.rows;
  std::vector<float> g(size_t(n * inter)), u(size_t(n * inter)), y(size_t(n * w.w2.rows));
  kernels::matmul(g.data(), x, w.w1, n);
  kernels::matmul(u.data(), x, w.w3, n);
  kernels::swiglu_forward(g.data(), g.data(), u.data(), n * inter);
  kernels::matmul(y.data(), g.data(), w.w2, n);
  return y;
}

TEST(GroupedMlp, EqualsSeparateFfnsBitForBitForAnyThreadCount) {
  // Widths that cross and split 128-wide FP8 blocks.
  ModelConfig c = testing::odd_shapes_v3_config();
  c.dim = 136;
  c.moe_inter_dim = 200;
  const std::vector<int64_t> tokens = {1, 0, 3, 8, 2, 5, 7, 4};
  for (DType dtype : {DType::F32, DType::BF16, DType::F8_E4M3}) {
    RandomWeights rw(c, {.dtype = dtype, .seed = 3});
    const MoeWeights& moe = rw.weights().layers[1].moe;
    ASSERT_GE(moe.experts.size(), tokens.size());
    Rng rng(5);
    std::vector<std::vector<float>> xs, want;
    for (size_t j = 0; j < tokens.size(); ++j) {
      std::vector<float> x(size_t(tokens[j] * c.dim));
      for (float& v : x) v = rng.next_normal();
      want.push_back(plain_ffn(moe.experts[j], x.data(), tokens[j]));
      xs.push_back(std::move(x));
    }
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      std::vector<std::vector<float>> ys(tokens.size());
      std::vector<FfnJob> jobs;
      for (size_t j = 0; j < tokens.size(); ++j) {
        ys[j].assign(size_t(tokens[j] * c.dim), -1.0f);
        jobs.push_back({&moe.experts[j], xs[j].data(), ys[j].data(), tokens[j]});
      }
      MlpScratch scratch;
      grouped_mlp_forward(jobs, scratch);
      for (size_t j = 0; j < tokens.size(); ++j) {
        ASSERT_EQ(ys[j].size(), want[j].size());
        if (ys[j].empty()) continue;  // a job without tokens
        EXPECT_EQ(std::memcmp(ys[j].data(), want[j].data(), ys[j].size() * sizeof(float)), 0)
            << dtype_name(dtype) << " job " << j << " threads " << threads;
      }
    }
  }
  set_num_threads(2);
}

}  // namespace
}  // namespace dsv3
