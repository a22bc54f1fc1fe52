// A decode step allocates nothing on the heap once its buffers have grown (style rule 3): every
// scratch buffer is sized by the first steps and reused (counted by support/alloc_counter.h).
#include <gtest/gtest.h>

#include <vector>

#include "model/random_weights.h"
#include "model/transformer.h"
#include "support/alloc_counter.h"
#include "support/model_fixtures.h"

namespace dsv3 {
namespace {

TEST(DecodeAllocations, SteadyStateDecodeStepAllocatesNothing) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F8_E4M3}) {
    ModelConfig c = testing::odd_shapes_v3_config();
    RandomWeights rw(c, {.dtype = dtype});
    Transformer model(c, rw.weights());
    KvPool pool(model.cache_layers(), model.cache_row_dim(), 16, 4);
    SequenceCache cache(pool);
    ASSERT_TRUE(cache.reserve(64).is_ok());
    std::vector<int32_t> prompt = {0, 5, 9, 13, 2, 7};
    std::vector<float> logits(size_t(c.vocab_size));
    SeqChunk chunk{&cache, prompt.data(), int64_t(prompt.size())};
    ASSERT_TRUE(model.forward({&chunk, 1}, logits.data()).is_ok());
    int32_t token = 3;
    auto step = [&] {
      SeqChunk one{&cache, &token, 1};
      ASSERT_TRUE(model.forward({&one, 1}, logits.data()).is_ok());
      token = int32_t((token * 7 + 1) % c.vocab_size);
    };
    for (int i = 0; i < 3; ++i) step();  // warm-up: buffers reach their decode sizes
    testing::AllocationCounter counter;
    for (int i = 0; i < 20; ++i) step();
    EXPECT_EQ(counter.count(), 0) << "dtype " << dtype_name(dtype);
  }
}

// The same for a step of several sequences decoded together (the server's continuous batching).
TEST(DecodeAllocations, SteadyStateBatchedDecodeStepAllocatesNothing) {
  ModelConfig c = testing::odd_shapes_v3_config();
  RandomWeights rw(c, {.dtype = DType::F8_E4M3});
  Transformer model(c, rw.weights());
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 16, 12);
  SequenceCache c1(pool), c2(pool), c3(pool);
  SequenceCache* caches[3] = {&c1, &c2, &c3};
  std::vector<int32_t> prompt = {0, 5, 9, 13, 2, 7};
  std::vector<float> logits(3 * size_t(c.vocab_size));
  for (int64_t b = 0; b < 3; ++b) {
    ASSERT_TRUE(caches[b]->reserve(64).is_ok());
    SeqChunk chunk{caches[b], prompt.data(), 2 + 2 * b};
    ASSERT_TRUE(model.forward({&chunk, 1}, logits.data()).is_ok());
  }
  int32_t tokens[3] = {3, 4, 5};
  SeqChunk batch[3];
  auto step = [&] {
    for (int64_t b = 0; b < 3; ++b) batch[b] = SeqChunk{caches[b], &tokens[b], 1};
    ASSERT_TRUE(model.forward(batch, logits.data()).is_ok());
    for (auto& t : tokens) t = int32_t((t * 7 + 1) % c.vocab_size);
  };
  for (int i = 0; i < 3; ++i) step();
  testing::AllocationCounter counter;
  for (int i = 0; i < 20; ++i) step();
  EXPECT_EQ(counter.count(), 0);
}

}  // namespace
}  // namespace dsv3
