// TokenSampler: greedy, nucleus, penalties, and reproducibility from the seed alone.
#include <gtest/gtest.h>

#include <vector>

#include "server/sampling.h"

namespace dsv3::server {
namespace {

TEST(TokenSampler, TemperatureZeroIsArgmaxWithLowestIdOnTies) {
  TokenSampler s({.temperature = 0.0f});
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(logits, 0), 1);
}

TEST(TokenSampler, TinyTopPKeepsOnlyTheMostLikelyToken) {
  TokenSampler s({.temperature = 1.0f, .top_p = 1e-3f, .seed = 5});
  for (uint64_t i = 0; i < 50; ++i) {
    std::vector<float> logits = {0.0f, 0.5f, 3.0f, 1.0f};
    EXPECT_EQ(s.sample(logits, i), 2);
  }
}

TEST(TokenSampler, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  auto draws = [](uint64_t seed) {
    TokenSampler s({.temperature = 1.0f, .seed = seed});
    std::vector<int32_t> out;
    for (uint64_t i = 0; i < 64; ++i) {
      std::vector<float> logits(16, 0.0f);  // uniform: every token equally likely
      out.push_back(s.sample(logits, i));
    }
    return out;
  };
  EXPECT_EQ(draws(1), draws(1));
  EXPECT_NE(draws(1), draws(2));
}

TEST(TokenSampler, FrequencyAndPresencePenaltiesFollowOpenAi) {
  TokenSampler s({.temperature = 0.0f, .presence_penalty = 0.5f, .frequency_penalty = 0.25f});
  s.observe(0);
  s.observe(0);
  // Token 0 loses 2·0.25 + 0.5 = 1.0: 1.9 - 1.0 < 1.0, so token 1 wins.
  std::vector<float> logits = {1.9f, 1.0f};
  EXPECT_EQ(s.sample(logits, 0), 1);
  EXPECT_FLOAT_EQ(logits[0], 0.9f);
}

TEST(TokenSampler, SamplingFrequenciesMatchSoftmax) {
  // 4000 draws of softmax([0, ln 3]) = (0.25, 0.75): the count of token 1 has sd
  // sqrt(4000·0.75·0.25) ≈ 27; allow 5 sd.
  TokenSampler s({.temperature = 1.0f, .seed = 11});
  int ones = 0;
  for (uint64_t i = 0; i < 4000; ++i) {
    std::vector<float> logits = {0.0f, std::log(3.0f)};
    ones += s.sample(logits, i);
  }
  EXPECT_NEAR(ones, 3000, 5 * 27);
}

}  // namespace
}  // namespace dsv3::server
