// The forward pass against itself along independent routes: absorbed vs naive MLA, token by
// token vs full sequence, chunked prefill, batched sequences, FP8 vs the same weights
// dequantized, and 1 vs 2 threads.
//
// Tolerances: everything is f32 with sums of at most a few hundred terms of O(1) values, so two
// association orders differ by ~1e-6 relative; 1e-4·std of the logits leaves a wide margin while
// any real bug (wrong mask, rope position, cache row) moves logits by O(std).
#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <vector>

#include "core/parallel_for.h"
#include "model/random_weights.h"
#include "model/transformer.h"
#include "support/model_fixtures.h"

namespace dsv3 {
namespace {

using testing::max_err_over_std;

std::vector<int32_t> test_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t((i * 37 + 11) % vocab);
  t[0] = 0;  // BOS
  return t;
}

// Logits of every position, running the sequence through `chunk_sizes` forwards.
std::vector<float> run(const ModelConfig& cfg, const ModelWeights& w, const std::vector<int32_t>& tokens,
                       std::vector<int64_t> chunk_sizes, AttentionPath path) {
  Transformer model(cfg, w);
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 4, 64);
  SequenceCache cache(pool);
  std::vector<float> logits(tokens.size() * size_t(cfg.vocab_size));
  int64_t pos = 0;
  for (int64_t n : chunk_sizes) {
    SeqChunk chunk{&cache, tokens.data() + pos, n};
    Status st = model.forward({&chunk, 1}, logits.data() + pos * cfg.vocab_size, {path, true});
    EXPECT_TRUE(st.is_ok()) << st.message();
    pos += n;
  }
  EXPECT_EQ(pos, int64_t(tokens.size()));
  EXPECT_EQ(cache.length(), pos);
  return logits;
}

class ForwardTest : public ::testing::TestWithParam<int> {
 protected:
  ModelConfig cfg() const { return GetParam() == 0 ? testing::odd_shapes_v3_config() : testing::odd_shapes_v2_lite_config(); }
};

TEST_P(ForwardTest, AbsorbedEqualsNaive) {
  ModelConfig c = cfg();
  RandomWeights rw(c, {});
  auto tokens = test_tokens(14, c.vocab_size);
  auto naive = run(c, rw.weights(), tokens, {14}, AttentionPath::Naive);
  auto absorbed = run(c, rw.weights(), tokens, {14}, AttentionPath::Absorbed);
  EXPECT_LT(max_err_over_std(absorbed, naive), 1e-4);
}

TEST_P(ForwardTest, IncrementalEqualsFullSequence) {
  ModelConfig c = cfg();
  RandomWeights rw(c, {});
  auto tokens = test_tokens(14, c.vocab_size);
  auto full = run(c, rw.weights(), tokens, {14}, AttentionPath::Naive);
  auto incremental = run(c, rw.weights(), tokens, std::vector<int64_t>(14, 1), AttentionPath::Absorbed);
  EXPECT_LT(max_err_over_std(incremental, full), 1e-4);
  // Chunked prefill (start_pos > 0 with several new tokens) exercises the full [S, T] mask.
  auto chunked = run(c, rw.weights(), tokens, {5, 6, 3}, AttentionPath::Absorbed);
  EXPECT_LT(max_err_over_std(chunked, full), 1e-4);
  auto chunked_naive = run(c, rw.weights(), tokens, {5, 6, 3}, AttentionPath::Naive);
  EXPECT_LT(max_err_over_std(chunked_naive, full), 1e-4);
}

TEST_P(ForwardTest, Fp8EqualsDequantizedF32) {
  ModelConfig c = cfg();
  RandomWeights fp8(c, {.dtype = DType::F8_E4M3});
  // The same model with every matrix dequantized to f32 (element by element through .at()).
  std::vector<std::vector<float>> store;
  auto deq = [&](const WeightMatrix& m) {
    if (m.empty()) return m;
    store.emplace_back(size_t(m.rows * m.cols));
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t k = 0; k < m.cols; ++k) store.back()[size_t(r * m.cols + k)] = m.at(r, k);
    return WeightMatrix{store.back().data(), DType::F32, m.rows, m.cols};
  };
  ModelWeights f32 = fp8.weights();
  f32.embed = deq(f32.embed);
  f32.head = deq(f32.head);
  for (auto* layers : {&f32.layers, &f32.mtp_layers}) {
    for (auto& L : *layers) {
      for (auto* m : {&L.attn.wq, &L.attn.wq_a, &L.attn.wq_b, &L.attn.wkv_a, &L.attn.wkv_b, &L.attn.wo,
                      &L.mlp.w1, &L.mlp.w2, &L.mlp.w3, &L.moe.gate, &L.moe.shared.w1, &L.moe.shared.w2,
                      &L.moe.shared.w3, &L.mtp.eh_proj})
        *m = deq(*m);
      for (auto& e : L.moe.experts)
        for (auto* m : {&e.w1, &e.w2, &e.w3}) *m = deq(*m);
    }
  }
  auto tokens = test_tokens(9, c.vocab_size);
  auto a = run(c, fp8.weights(), tokens, {9}, AttentionPath::Absorbed);
  auto b = run(c, f32, tokens, {9}, AttentionPath::Absorbed);
  EXPECT_LT(max_err_over_std(a, b), 1e-4);
}

TEST_P(ForwardTest, BatchedSequencesEqualSeparateRuns) {
  ModelConfig c = cfg();
  RandomWeights rw(c, {});
  auto t1 = test_tokens(7, c.vocab_size), t2 = test_tokens(11, c.vocab_size);
  for (auto& t : t2) t = (t * 5 + 3) % int32_t(c.vocab_size);
  auto l1 = run(c, rw.weights(), t1, {7}, AttentionPath::Absorbed);
  auto l2 = run(c, rw.weights(), t2, {11}, AttentionPath::Absorbed);
  Transformer model(c, rw.weights());
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 4, 64);
  SequenceCache c1(pool), c2(pool);
  SeqChunk batch[2] = {{&c1, t1.data(), 7}, {&c2, t2.data(), 11}};
  std::vector<float> logits(18 * size_t(c.vocab_size));
  ASSERT_TRUE(model.forward(batch, logits.data(), {AttentionPath::Absorbed, true}).is_ok());
  std::vector<float> b1(logits.begin(), logits.begin() + 7 * c.vocab_size);
  std::vector<float> b2(logits.begin() + 7 * c.vocab_size, logits.end());
  EXPECT_LT(max_err_over_std(b1, l1), 1e-5);
  EXPECT_LT(max_err_over_std(b2, l2), 1e-5);
}

// Decode steps of several sequences at once (one token each: the absorbed path's batched decode,
// with one absorption and one projection over all tokens) against each sequence run alone, and
// against the naive path on the same batch; 1 and 2 threads give the same bits.
TEST_P(ForwardTest, BatchedDecodeStepsEqualSeparateRuns) {
  ModelConfig c = cfg();
  RandomWeights rw(c, {});
  const int64_t V = c.vocab_size, steps = 4;
  const std::vector<int64_t> prompt_len = {5, 9, 2};
  const int64_t B = int64_t(prompt_len.size());
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::vector<float>> alone;
  for (int64_t b = 0; b < B; ++b) {
    auto t = test_tokens(prompt_len[size_t(b)] + steps, V);
    for (auto& x : t) x = int32_t((x * (2 * b + 3) + b) % V);
    std::vector<int64_t> chunks = {prompt_len[size_t(b)]};
    chunks.resize(size_t(1 + steps), 1);
    alone.push_back(run(c, rw.weights(), t, chunks, AttentionPath::Absorbed));
    seqs.push_back(std::move(t));
  }
  auto batched = [&](AttentionPath path) {
    Transformer model(c, rw.weights());
    KvPool pool(model.cache_layers(), model.cache_row_dim(), 4, 64);
    std::vector<std::unique_ptr<SequenceCache>> caches;
    std::vector<float> prompt_logits(size_t(16 * V));
    for (int64_t b = 0; b < B; ++b) {
      caches.push_back(std::make_unique<SequenceCache>(pool));
      SeqChunk chunk{caches.back().get(), seqs[size_t(b)].data(), prompt_len[size_t(b)]};
      EXPECT_TRUE(model.forward({&chunk, 1}, prompt_logits.data(), {path, true}).is_ok());
    }
    std::vector<float> out(size_t(steps * B * V));  // (step, sequence, vocab)
    for (int64_t g = 0; g < steps; ++g) {
      std::vector<SeqChunk> step;
      for (int64_t b = 0; b < B; ++b) {
        step.push_back({caches[size_t(b)].get(), seqs[size_t(b)].data() + prompt_len[size_t(b)] + g, 1});
      }
      EXPECT_TRUE(model.forward(step, out.data() + g * B * V, {path, false}).is_ok());
    }
    return out;
  };
  const auto absorbed = batched(AttentionPath::Absorbed);
  const auto naive = batched(AttentionPath::Naive);
  EXPECT_LT(max_err_over_std(absorbed, naive), 1e-4);
  for (int64_t g = 0; g < steps; ++g) {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t pos = prompt_len[size_t(b)] + g;
      std::vector<float> got(absorbed.begin() + (g * B + b) * V, absorbed.begin() + (g * B + b + 1) * V);
      std::vector<float> want(alone[size_t(b)].begin() + pos * V, alone[size_t(b)].begin() + (pos + 1) * V);
      EXPECT_LT(max_err_over_std(got, want), 1e-5) << "step " << g << " sequence " << b;
    }
  }
  const int saved = num_threads();
  set_num_threads(1);
  const auto one = batched(AttentionPath::Absorbed);
  set_num_threads(2);
  const auto two = batched(AttentionPath::Absorbed);
  set_num_threads(saved);
  EXPECT_EQ(one, two);
}

TEST_P(ForwardTest, OneAndTwoThreadsGiveIdenticalBits) {
  ModelConfig c = cfg();
  RandomWeights rw(c, {.dtype = DType::BF16});
  auto tokens = test_tokens(10, c.vocab_size);
  const int saved = num_threads();
  set_num_threads(1);
  auto one = run(c, rw.weights(), tokens, {6, 1, 3}, AttentionPath::Absorbed);
  set_num_threads(2);
  auto two = run(c, rw.weights(), tokens, {6, 1, 3}, AttentionPath::Absorbed);
  set_num_threads(saved);
  EXPECT_EQ(one, two);
}

INSTANTIATE_TEST_SUITE_P(Variants, ForwardTest, ::testing::Values(0, 1),
                         [](const auto& info) { return info.param == 0 ? "V3" : "V2Lite"; });

TEST(ForwardErrors, RejectsBadTokensAndFullPools) {
  ModelConfig c = testing::odd_shapes_v3_config();
  RandomWeights rw(c, {});
  Transformer model(c, rw.weights());
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 4, 2);  // room for 8 tokens
  SequenceCache cache(pool);
  std::vector<float> logits(size_t(c.vocab_size) * 16);
  std::vector<int32_t> bad = {0, 5, int32_t(c.vocab_size)};
  SeqChunk chunk{&cache, bad.data(), 3};
  Status st = model.forward({&chunk, 1}, logits.data());
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("outside the vocabulary"), std::string::npos) << st.message();
  auto tokens = test_tokens(9, c.vocab_size);
  chunk = {&cache, tokens.data(), 9};
  st = model.forward({&chunk, 1}, logits.data());
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("KV cache pool exhausted"), std::string::npos) << st.message();
  EXPECT_EQ(cache.length(), 0);
}

// A chunk without tokens has no last token to give logits for: refused before any work.
TEST(ForwardErrors, RejectsAnEmptyChunk) {
  ModelConfig c = testing::odd_shapes_v3_config();
  RandomWeights rw(c, {});
  Transformer model(c, rw.weights());
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 4, 4);
  SequenceCache c1(pool), c2(pool);
  std::vector<float> logits(size_t(c.vocab_size) * 4);
  auto tokens = test_tokens(2, c.vocab_size);
  SeqChunk batch[2] = {{&c1, tokens.data(), 0}, {&c2, tokens.data(), 2}};
  const Status st = model.forward(batch, logits.data());
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("no tokens"), std::string::npos) << st.message();
  EXPECT_EQ(c1.length(), 0);
  EXPECT_EQ(c2.length(), 0);
}

}  // namespace
}  // namespace dsv3
