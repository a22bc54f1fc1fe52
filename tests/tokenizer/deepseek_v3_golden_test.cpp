// The DeepSeek-V3 tokenizer against golden ids from an independent implementation
// (@lenml/tokenizers, tests/golden/tokenizer/PROVENANCE.md) and against facts of spec §6.
#include <gtest/gtest.h>

#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_test_util.h"

namespace dsv3 {
namespace {

using testing::deepseek_v3_tokenizer;

// The id of the single-byte token of byte b.
int32_t byte_token(const Tokenizer& tok, uint8_t b) { return *tok.token_id(byte_level_pieces()[b]); }

TEST(DeepSeekV3Tokenizer, GoldenCasesEncodeAndDecode) {
  const Tokenizer* tok = deepseek_v3_tokenizer();
  ASSERT_NE(tok, nullptr);
  const auto golden = testing::read_json_file(testing::golden_dir() + "/deepseek_v3_cases.json");
  ASSERT_GE(golden["cases"].size(), 60u);
  for (const auto& c : golden["cases"]) {
    const std::string name = c["name"], text = c["text"], decoded = c["decoded"];
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto got = tok->encode(text);
    EXPECT_EQ(got, want) << "case " << name;
    EXPECT_EQ(tok->decode(want), decoded) << "case " << name;
    EXPECT_EQ(tok->decode(got), text) << "case " << name;
  }
}

TEST(DeepSeekV3Tokenizer, SpecialTokensAndSizes) {
  const Tokenizer* tok = deepseek_v3_tokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_EQ(tok->pad_id(), 1);  // pad = eos in tokenizer_config.json
  EXPECT_TRUE(tok->add_bos_token());
  EXPECT_EQ(tok->vocab_size(), 128815u);  // ids 128815..129279 are embedding rows without a token
  EXPECT_EQ(tok->token_id("<｜User｜>"), 128803);
  EXPECT_EQ(tok->token_id("<｜Assistant｜>"), 128804);
  EXPECT_EQ(tok->token_id("<|EOT|>"), 128805);
  EXPECT_EQ(tok->token_id("<｜tool▁sep｜>"), 128814);
  EXPECT_EQ(tok->token_id("<｜▁pad▁｜>"), 2);
  EXPECT_EQ(tok->token_id("Ġ"), tok->encode(" ")[0]);
  EXPECT_TRUE(tok->is_special(0));
  EXPECT_FALSE(tok->is_special(128803));
  EXPECT_FALSE(tok->chat_template().empty());
  // ids 3..258 are the 256 single-byte symbols.
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tok->token_bytes(3 + b).size(), 1u) << b;
}

TEST(DeepSeekV3Tokenizer, BosAndSkipSpecial) {
  const Tokenizer* tok = deepseek_v3_tokenizer();
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode("Hello world", /*add_bos=*/true);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(tok->decode(ids), "<｜begin▁of▁sentence｜>Hello world");
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "Hello world");
  // Chat markers are not special: skip_special keeps them.
  const auto chat = tok->encode("<｜User｜>hi<｜end▁of▁sentence｜>");
  EXPECT_EQ(tok->decode(chat, true), "<｜User｜>hi");
  // Ids without a token are skipped.
  const std::vector<int32_t> odd = {129000, -5, 19923};
  EXPECT_EQ(tok->decode(odd), "Hello");
}

TEST(DeepSeekV3Tokenizer, PatternsInFileAreTheBuiltInOnes) {
  const auto tj = testing::read_json_file(testing::deepseek_v3_tokenizer_dir() + "/tokenizer.json");
  const auto& steps = tj["pre_tokenizer"]["pretokenizers"];
  const auto& want = deepseek_v3_split_patterns();
  ASSERT_EQ(steps.size(), want.size() + 1);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(steps[i]["pattern"]["Regex"].get<std::string>(), want[i]) << i;
}

TEST(DeepSeekV3Tokenizer, PreTokenizerSplitsDigitsAndCjk) {
  const Tokenizer* tok = deepseek_v3_tokenizer();
  ASSERT_NE(tok, nullptr);
  using V = std::vector<std::string>;
  EXPECT_EQ(tok->pre_tokenize("1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(tok->pre_tokenize("ab你好cd"), (V{"ab", "你好", "cd"}));
  EXPECT_EQ(tok->pre_tokenize("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(tok->pre_tokenize("x\r\n\r\ny"), (V{"x", "\r\n\r\n", "y"}));
  // Oniguruma's \s (HF) includes U+0085 and excludes U+180E; PCRE2's own \s includes both, which
  // would make `\s*[\r\n]+` swallow U+180E. Expected pieces computed with Oniguruma 6.9.8.
  EXPECT_EQ(tok->pre_tokenize("a\xC2\x85\n"), (V{"a", "\xC2\x85\n"}));
  EXPECT_EQ(tok->pre_tokenize("a\xE1\xA0\x8E\n"), (V{"a", "\xE1\xA0\x8E", "\n"}));
}

TEST(DeepSeekV3Tokenizer, InvalidUtf8IsRepairedLikeHf) {
  const Tokenizer* tok = deepseek_v3_tokenizer();
  ASSERT_NE(tok, nullptr);
  // Each maximal invalid subpart becomes one U+FFFD before encoding.
  EXPECT_EQ(tok->encode("a\xff" "b"), tok->encode("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(tok->encode("\xE4\xBD"), tok->encode("\xEF\xBF\xBD"));          // truncated 3-byte sequence
  EXPECT_EQ(tok->encode("\xC0\xAF"), tok->encode("\xEF\xBF\xBD\xEF\xBF\xBD"));  // overlong: two subparts
  EXPECT_EQ(tok->encode("\xED\xA0\x80"), tok->encode("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));  // surrogate
  // Decoding a partial character: decode() repairs, decode_bytes() keeps the bytes.
  const auto ids = tok->encode("é");
  ASSERT_EQ(tok->decode_bytes(ids), "é");
  const auto e_bytes = tok->encode("\xC3\xA9");
  EXPECT_EQ(tok->decode(e_bytes), "é");
  const std::vector<int32_t> lead_only = {byte_token(*tok, 0xC3)};
  EXPECT_EQ(tok->decode_bytes(lead_only), "\xC3");
  EXPECT_EQ(tok->decode(lead_only), "\xEF\xBF\xBD");
}

TEST(DeepSeekV3Tokenizer, StreamDecoderHoldsPartialCharacters) {
  const Tokenizer* tok = deepseek_v3_tokenizer();
  ASSERT_NE(tok, nullptr);
  // Byte tokens of "é🍕" one at a time: nothing is emitted until a character completes.
  const std::string text = "\xC3\xA9\xF0\x9F\x8D\x95!";
  std::vector<int32_t> ids;
  for (char c : text) ids.push_back(byte_token(*tok, uint8_t(c)));
  ASSERT_EQ(tok->decode(ids), text);
  StreamDecoder sd(*tok);
  std::vector<std::string> outs;
  for (int32_t id : ids) outs.push_back(sd.push(id));
  EXPECT_EQ(outs, (std::vector<std::string>{"", "é", "", "", "", "🍕", "!"}));
  EXPECT_EQ(sd.flush(), "");
  // A dangling lead byte comes out as U+FFFD at flush, matching decode().
  StreamDecoder sd2(*tok);
  std::string all = sd2.push(tok->encode("ab")[0]);
  all += sd2.push(byte_token(*tok, 0xE4));
  all += sd2.flush();
  EXPECT_EQ(all, tok->decode(std::vector<int32_t>{tok->encode("ab")[0], byte_token(*tok, 0xE4)}));
}

TEST(DeepSeekV3Tokenizer, StreamDecoderEqualsDecodeOnGoldenCases) {
  const Tokenizer* tok = deepseek_v3_tokenizer();
  ASSERT_NE(tok, nullptr);
  const auto golden = testing::read_json_file(testing::golden_dir() + "/deepseek_v3_cases.json");
  for (const auto& c : golden["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    StreamDecoder sd(*tok);
    std::string streamed;
    for (int32_t id : ids) streamed += sd.push(id);
    streamed += sd.flush();
    EXPECT_EQ(streamed, tok->decode(ids)) << c["name"];
  }
}

}  // namespace
}  // namespace dsv3
