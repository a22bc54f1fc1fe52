// Loading: unsupported or malformed tokenizer files are errors (never aborts), and a loaded
// tokenizer is safe to share between threads.
#include <gtest/gtest.h>

#include <thread>

#include "tokenizer/tokenizer_test_util.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace dsv3 {
namespace {

nlohmann::json trained_json() { return testing::read_json_file(testing::golden_dir() + "/trained/tokenizer.json"); }

std::string load_error(const nlohmann::json& j) {
  auto tok = Tokenizer::from_json(j.dump(), "");
  return tok.is_ok() ? "" : tok.message();
}

TEST(TokenizerLoad, UnsupportedOrMalformedFilesAreErrors) {
  EXPECT_EQ(load_error(trained_json()), "");
  auto j = trained_json();
  j["normalizer"] = {{"type", "NFC"}};
  EXPECT_NE(load_error(j).find("normalizer 'NFC' is not supported"), std::string::npos) << load_error(j);
  j = trained_json();
  j["model"]["merges"][0] = "Ġ nonexistent_token";
  EXPECT_NE(load_error(j).find("missing from the vocab"), std::string::npos);
  j = trained_json();
  j["model"]["merges"][0] = "nospace";
  EXPECT_NE(load_error(j).find("not of the form"), std::string::npos);
  j = trained_json();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  EXPECT_NE(load_error(j).find("behavior 'Removed'"), std::string::npos);
  j = trained_json();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  EXPECT_NE(load_error(j).find("cannot compile regex"), std::string::npos);
  j = trained_json();
  j["model"]["type"] = "Unigram";
  EXPECT_NE(load_error(j).find("Unigram"), std::string::npos);
  j = trained_json();
  j["model"]["vocab"]["Ġ"] = 1 << 30;
  EXPECT_NE(load_error(j).find("out of range"), std::string::npos);
  EXPECT_FALSE(Tokenizer::from_json("{not json", "").is_ok());
  EXPECT_FALSE(Tokenizer::from_json("[]", "").is_ok());
  EXPECT_FALSE(Tokenizer::load("/nonexistent/tokenizer.json").is_ok());
  // A config naming a token the vocab lacks.
  EXPECT_FALSE(Tokenizer::from_json(trained_json().dump(), R"({"bos_token": "<nope>"})").is_ok());
}

TEST(TokenizerLoad, MergesAsArraysAndWhitespaceRewrite) {
  // Newer tokenizer.json files store merges as ["a", "b"] pairs.
  auto j = trained_json();
  const auto text = testing::read_text_file(testing::golden_dir() + "/train_fixture.txt");
  auto reference = Tokenizer::from_json(j.dump(), "");
  ASSERT_TRUE(reference.is_ok());
  for (auto& m : j["model"]["merges"]) {
    const std::string s = m;
    m = nlohmann::json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  auto arrays = Tokenizer::from_json(j.dump(), "");
  ASSERT_TRUE(arrays.is_ok()) << arrays.message();
  EXPECT_EQ(arrays->encode(text), reference->encode(text));
  // \s inside and outside classes, escapes, and literal ']' at a class start.
  const std::string w = R"(\x{09}-\x{0D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
  auto r = detail::rewrite_whitespace_classes(R"(\s[\s,]\\s[]\s]\S)");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r, "[" + w + "][" + w + ",]" + R"(\\s[])" + w + "][^" + w + "]");
  EXPECT_FALSE(detail::rewrite_whitespace_classes(R"([\S])").is_ok());
}

TEST(TokenizerLoad, ConcurrentEncodeMatchesSequential) {
  auto tok = Tokenizer::load(testing::golden_dir() + "/trained");
  ASSERT_TRUE(tok.is_ok());
  const auto text = testing::read_text_file(testing::golden_dir() + "/train_fixture.txt");
  const auto want = tok->encode(text);
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) got[t] = tok->encode(text);
    });
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

TEST(Utf8, RepairAndEmittablePrefix) {
  EXPECT_EQ(utf8_repair("ok"), "ok");
  EXPECT_EQ(utf8_repair("\xF0\x9F\x8D"), "\xEF\xBF\xBD");         // truncated 4-byte: one U+FFFD
  EXPECT_EQ(utf8_repair("\xF0\x9F\x8D" "a"), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(utf8_repair("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // lone continuations: one each
  EXPECT_EQ(utf8_repair("\xF5"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8_emittable_prefix("ab\xE4\xBD"), 2u);
  EXPECT_EQ(utf8_emittable_prefix("ab\xE4\xBD\xA0"), 5u);
  EXPECT_EQ(utf8_emittable_prefix("ab\xE4" "a"), 4u);  // broken sequence: emit (as U+FFFD)
  EXPECT_EQ(utf8_emittable_prefix("\xF0\x9F\x8D"), 0u);
  EXPECT_EQ(utf8_emittable_prefix("\xED\xA0"), 2u);  // surrogate range: never valid, emit
}

}  // namespace
}  // namespace dsv3
