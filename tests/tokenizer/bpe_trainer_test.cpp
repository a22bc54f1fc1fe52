// The BPE trainer: hand-derived merges, exact vocab size, valid merges, determinism against the
// committed fixture, and the trained tokenizer against golden ids from @lenml/tokenizers.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>

#include "tokenizer/bpe.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_test_util.h"

namespace dsv3 {
namespace {

std::string trained_dir() { return testing::golden_dir() + "/trained"; }
std::string fixture_text() { return testing::read_text_file(testing::golden_dir() + "/train_fixture.txt"); }

TrainedBpe train(const std::string& text, size_t vocab_size) {
  BpeTrainerOptions o;
  o.vocab_size = vocab_size;
  auto trainer = BpeTrainer::create(o);
  EXPECT_TRUE(trainer.is_ok()) << trainer.message();
  trainer->add_text(text);
  auto trained = trainer->train();
  EXPECT_TRUE(trained.is_ok()) << trained.message();
  return std::move(trained).value();
}

TEST(BpeTrainer, HandDerivedMergesAndTieBreak) {
  // One pre-token "aaabdaaabac": pair counts aa:4 ab:2 bd:1 da:1 ba:1 ac:1 -> merge (a,a).
  // Then (aa,a):2 and (a,b):2 tie; the smaller (left id, right id) wins: 'a' < the new "aa".
  const TrainedBpe t = train("aaabdaaabac", 5 + 256 + 2);
  ASSERT_EQ(t.merges.size(), 2u);
  EXPECT_EQ(t.merges[0], (std::pair<std::string, std::string>{"a", "a"}));
  EXPECT_EQ(t.merges[1], (std::pair<std::string, std::string>{"a", "b"}));
  EXPECT_EQ(t.vocab.size(), 263u);
  EXPECT_EQ(t.vocab[261], "aa");
  EXPECT_EQ(t.vocab[262], "ab");
}

TEST(BpeTrainer, StopsWhenNoPairIsLeft) {
  const TrainedBpe t = train("ab", 1000);
  EXPECT_EQ(t.merges.size(), 1u);
  EXPECT_EQ(t.vocab.size(), 5u + 256u + 1u);
}

TEST(BpeTrainer, RejectsTooSmallVocab) {
  BpeTrainerOptions o;
  o.vocab_size = 100;
  EXPECT_FALSE(BpeTrainer::create(o).is_ok());
}

TEST(BpeTrainer, VocabSizeExactMergesValidAndDeterministic) {
  const TrainedBpe t = train(fixture_text(), 1000);
  ASSERT_EQ(t.vocab.size(), 1000u);
  // Specials first, then all 256 byte symbols.
  EXPECT_EQ(t.vocab[0], "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(t.vocab[1], "<｜end▁of▁sentence｜>");
  EXPECT_EQ(t.vocab[2], "<｜▁pad▁｜>");
  std::set<std::string> bytes(t.vocab.begin() + 5, t.vocab.begin() + 5 + 256);
  for (const auto& p : byte_level_pieces()) EXPECT_TRUE(bytes.count(p)) << p;
  // Every merge joins two earlier tokens into one that is in the vocab.
  std::map<std::string, size_t> id;
  for (size_t i = 0; i < t.vocab.size(); ++i) id.emplace(t.vocab[i], i);
  for (size_t r = 0; r < t.merges.size(); ++r) {
    const auto& [l, rt] = t.merges[r];
    ASSERT_TRUE(id.count(l) && id.count(rt) && id.count(l + rt)) << r;
    EXPECT_LT(id[l], id[l + rt]);
    EXPECT_LT(id[rt], id[l + rt]);
  }
  // The committed fixture was produced by this trainer on this text: same bytes.
  EXPECT_EQ(t.tokenizer_json(), testing::read_text_file(trained_dir() + "/tokenizer.json"));
  EXPECT_EQ(t.tokenizer_config_json(), testing::read_text_file(trained_dir() + "/tokenizer_config.json"));
}

TEST(BpeTrainer, SavedTokenizerLoadsAndRoundTrips) {
  const TrainedBpe t = train(fixture_text(), 700);
  const auto dir = std::filesystem::temp_directory_path() / "dsv3_bpe_trainer_test";
  ASSERT_TRUE(t.save(dir.string()).is_ok());
  auto tok = Tokenizer::load(dir.string());
  ASSERT_TRUE(tok.is_ok()) << tok.message();
  EXPECT_EQ(tok->vocab_size(), 700u);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_EQ(tok->pad_id(), 2);
  EXPECT_EQ(tok->token_id("<｜User｜>"), 3);
  const std::string text = fixture_text();
  const auto ids = tok->encode(text);
  EXPECT_EQ(tok->decode(ids), text);
  EXPECT_LT(ids.size(), text.size() / 2);  // merges learned on this text compress it
  std::filesystem::remove_all(dir);
}

TEST(TrainedTokenizer, GoldenCasesFromJsReference) {
  auto tok = Tokenizer::load(trained_dir());
  ASSERT_TRUE(tok.is_ok()) << tok.message();
  for (const char* file : {"/trained_fixture_cases.json", "/trained_builtin_cases.json"}) {
    const auto golden = testing::read_json_file(testing::golden_dir() + file);
    ASSERT_GT(golden["cases"].size(), 60u);
    for (const auto& c : golden["cases"]) {
      const std::string text = c["text"];
      EXPECT_EQ(tok->encode(text), c["ids"].get<std::vector<int32_t>>()) << file << " " << c["name"];
      EXPECT_EQ(tok->decode(tok->encode(text)), text) << file << " " << c["name"];
    }
  }
}

// The heap merge loop against its quadratic twin, on random words over a small alphabet (many
// merges apply) with the trained fixture's merges.
TEST(Bpe, HeapMergeEqualsNaiveMerge) {
  const auto tj = testing::read_json_file(trained_dir() + "/tokenizer.json");
  std::map<std::string, int32_t> vocab;
  for (const auto& [k, v] : tj["model"]["vocab"].items()) vocab[k] = v.get<int32_t>();
  std::array<int32_t, 256> byte_ids;
  for (int b = 0; b < 256; ++b) byte_ids[b] = vocab.at(byte_level_pieces()[b]);
  std::vector<BpeMerge> merges;
  for (const auto& m : tj["model"]["merges"]) {
    const std::string s = m;
    const size_t sp = s.find(' ');
    const std::string l = s.substr(0, sp), r = s.substr(sp + 1);
    merges.push_back({vocab.at(l), vocab.at(r), vocab.at(l + r)});
  }
  const BpeModel model(byte_ids, merges);
  std::mt19937 rng(7);
  const std::string alphabet = "aehtnd sor";
  for (int trial = 0; trial < 2000; ++trial) {
    std::string word;
    const int len = 1 + int(rng() % 40);
    for (int i = 0; i < len; ++i) word += alphabet[rng() % alphabet.size()];
    std::vector<int32_t> fast, slow, cached;
    model.merge_heap(word, fast);
    model.merge_naive(word, slow);
    model.encode_piece(word, cached);
    ASSERT_EQ(fast, slow) << word;
    ASSERT_EQ(cached, slow) << word;
  }
}

}  // namespace
}  // namespace dsv3
