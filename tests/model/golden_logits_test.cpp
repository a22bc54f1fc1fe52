// The forward pass against an independent reference: tiny random checkpoints in the Hugging
// Face format and their logits, produced by the PyTorch re-implementation of DeepSeek's official
// model.py in tools/reference (see tests/golden/models/PROVENANCE.md).
//
// Tolerance: max |err| / std(reference logits) <= 1e-4. Both sides compute in f32 (the
// reference's own f32-vs-f64 gap is ~1e-6); the external acceptance bar is 1e-3. A wrong
// mask, RoPE pairing, YaRN factor, routing rule or scale moves logits by O(std).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "io/json.h"
#include "io/npy.h"
#include "model/loader.h"
#include "model/transformer.h"
#include "support/model_fixtures.h"

namespace dsv3 {
namespace {

std::string fixture_dir(const std::string& name) { return std::string(DSV3_TEST_DATA_DIR) + "/golden/models/" + name; }

std::vector<int32_t> fixture_tokens(const std::string& dir) {
  std::ifstream in(dir + "/tokens.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto j = nlohmann::json::parse(text);
  return j.at("tokens").get<std::vector<int32_t>>();
}

std::vector<float> npy(const std::string& path) {
  auto a = read_npy(path);
  EXPECT_TRUE(a.is_ok()) << a.message();
  return a ? a->to_f32() : std::vector<float>{};
}

class GoldenLogits : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenLogits, FullIncrementalAndNaiveMatchTheReference) {
  const std::string dir = fixture_dir(GetParam());
  auto loaded = load_model(dir);
  ASSERT_TRUE(loaded.is_ok()) << loaded.message();
  const ModelConfig& cfg = loaded->config;
  const auto tokens = fixture_tokens(dir);
  const int64_t T = int64_t(tokens.size()), V = cfg.vocab_size;
  const auto want = npy(dir + "/logits.npy");
  ASSERT_EQ(int64_t(want.size()), T * V);

  Transformer model(cfg, loaded->weights);
  for (auto [path, step] : {std::pair{AttentionPath::Absorbed, T}, std::pair{AttentionPath::Naive, T},
                            std::pair{AttentionPath::Absorbed, int64_t(1)}}) {
    KvPool pool(model.cache_layers(), model.cache_row_dim(), 8, 8);
    SequenceCache cache(pool);
    std::vector<float> got(size_t(T * V));
    for (int64_t t = 0; t < T; t += step) {
      SeqChunk chunk{&cache, tokens.data() + t, step};
      ASSERT_TRUE(model.forward({&chunk, 1}, got.data() + t * V, {path, true}).is_ok());
    }
    EXPECT_LT(testing::max_err_over_std(got, want), 1e-4) << "step " << step;
    for (int64_t t = 0; t < T; ++t) {
      auto argmax = [&](const std::vector<float>& v) {
        return std::max_element(v.begin() + t * V, v.begin() + (t + 1) * V) - (v.begin() + t * V);
      };
      EXPECT_EQ(argmax(got), argmax(want)) << "position " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenLogits, ::testing::Values("v3_tiny", "v3_fp8", "v2_lite"));

TEST(GoldenLogits, MtpModuleMatchesTheReference) {
  const std::string dir = fixture_dir("v3_tiny");
  auto loaded = load_model(dir);
  ASSERT_TRUE(loaded.is_ok()) << loaded.message();
  const ModelConfig& cfg = loaded->config;
  ASSERT_EQ(cfg.n_mtp_layers, 1);
  const auto tokens = fixture_tokens(dir);
  const int64_t T = int64_t(tokens.size()), V = cfg.vocab_size;
  Transformer model(cfg, loaded->weights);
  KvPool pool(model.cache_layers(), model.cache_row_dim(), 8, 8);
  KvPool mtp_pool(model.mtp_cache_layers(), model.cache_row_dim(), 8, 8);
  SequenceCache cache(pool), mtp_cache(mtp_pool);
  std::vector<float> logits(size_t(T * V)), mtp(size_t((T - 1) * V));
  SeqChunk chunk{&cache, tokens.data(), T};
  ASSERT_TRUE(model.forward({&chunk, 1}, logits.data(), {AttentionPath::Absorbed, true}).is_ok());
  std::vector<float> h(model.final_hidden(), model.final_hidden() + T * cfg.dim);
  SeqChunk next{&mtp_cache, tokens.data() + 1, T - 1};
  ASSERT_TRUE(model.mtp_forward(0, {&next, 1}, h.data(), mtp.data(), {AttentionPath::Absorbed, true}).is_ok());
  EXPECT_LT(testing::max_err_over_std(mtp, npy(dir + "/mtp_logits.npy")), 1e-4);
}

// The CLI end to end: `dsv3 logits` writes the same numbers.
TEST(GoldenLogits, CliWritesNpy) {
  const std::string dir = fixture_dir("v3_fp8");
  const auto tokens = fixture_tokens(dir);
  std::string list;
  for (size_t i = 0; i < tokens.size(); ++i) list += (i ? "," : "") + std::to_string(tokens[i]);
  const std::string out = ::testing::TempDir() + "/dsv3_cli_logits.npy";
  for (const char* mode : {"", " --incremental"}) {
    std::string cmd = std::string(DSV3_BINARY) + " logits --model " + dir + " --tokens " + list + " --out " + out + mode;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    EXPECT_LT(testing::max_err_over_std(npy(out), npy(dir + "/logits.npy")), 1e-4) << mode;
  }
  std::string bad = std::string(DSV3_BINARY) + " logits --model " + dir + " --tokens 0,99999 --out " + out + " 2>/dev/null";
  EXPECT_NE(std::system(bad.c_str()), 0);
}

}  // namespace
}  // namespace dsv3
