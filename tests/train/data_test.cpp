// Data preparation (documents, EOS, validation split, shard format) and the window sampler
// (permutation coverage, determinism, exact mid-epoch resume).
#include "train/data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "support/temp_dir.h"

namespace dsv3 {
namespace {

using testing::TempDir;

// One token per byte (ids 0..255), EOS = 256.
std::vector<int32_t> byte_tokens(std::string_view s) {
  return std::vector<int32_t>(reinterpret_cast<const uint8_t*>(s.data()),
                              reinterpret_cast<const uint8_t*>(s.data()) + s.size());
}

PrepareOptions options(const TempDir& dir, double val = 0.0) {
  PrepareOptions o;
  o.out_dir = dir / "data";
  o.val_fraction = val;
  o.vocab_size = 257;
  o.eos_id = 256;
  return o;
}

std::vector<int32_t> all_tokens(const TokenSplit& s) {
  // Windows of T = tokens − 1 cover a one-shard split exactly.
  std::vector<int32_t> out(size_t(s.tokens()));
  if (s.tokens() > 1) s.read_window(0, s.tokens() - 1, out.data());
  return out;
}

TEST(Data, PlainTextBlocksJsonlAndDocPerFile) {
  TempDir dir("data");
  std::string txt = dir.write("a.txt", "ab\ncd\n\n\n  \nef\n");        // docs "ab\ncd", "ef"
  std::string jsonl = dir.write("b.jsonl", "{\"text\": \"xy\"}\n\n{\"text\": \"z\"}\n");  // "xy", "z"
  Result<PrepareStats> st = prepare_dataset(options(dir), {txt, jsonl}, byte_tokens);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(st->train.documents, 4);
  EXPECT_EQ(st->val.documents, 0);
  Result<TokenDataset> ds = TokenDataset::open(dir / "data");
  ASSERT_TRUE(ds.is_ok()) << ds.message();
  EXPECT_EQ(ds->vocab_size(), 257);
  EXPECT_EQ(ds->eos_id(), 256);
  std::vector<int32_t> want = {'a', 'b', '\n', 'c', 'd', 256, 'e', 'f', 256, 'x', 'y', 256, 'z', 256};
  EXPECT_EQ(all_tokens(ds->train()), want);

  PrepareOptions o = options(dir);
  o.out_dir = dir / "data2";
  o.doc_per_file = true;
  st = prepare_dataset(o, {txt}, byte_tokens);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(st->train.documents, 1);
  EXPECT_EQ(st->train.tokens, 15);  // the 14 bytes of the file + EOS

  // An existing dataset is never overwritten; a bad JSONL line names file and line.
  EXPECT_FALSE(prepare_dataset(options(dir), {txt}, byte_tokens).is_ok());
  std::string bad = dir.write("bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": 1}\n");
  o.out_dir = dir / "data3";
  Result<PrepareStats> err = prepare_dataset(o, {bad}, byte_tokens);
  ASSERT_FALSE(err.is_ok());
  EXPECT_NE(err.message().find("bad.jsonl:2"), std::string::npos) << err.message();
}

TEST(Data, ValidationSplitIsWholeDocumentsFromTheSeed) {
  TempDir dir("data");
  std::string corpus;
  for (int d = 0; d < 100; ++d) corpus += std::string(3, char('A' + d % 26)) + std::to_string(d) + "\n\n";
  std::string txt = dir.write("c.txt", corpus);
  auto run = [&](const std::string& name, uint64_t seed) {
    PrepareOptions o = options(dir, 0.1);
    o.out_dir = dir / name;
    o.seed = seed;
    o.shard_tokens = 50;  // several shards per split
    EXPECT_TRUE(prepare_dataset(o, {txt}, byte_tokens).is_ok());
    Result<TokenDataset> ds = TokenDataset::open(o.out_dir);
    EXPECT_TRUE(ds.is_ok()) << ds.message();
    return std::move(ds.value());
  };
  TokenDataset a = run("a", 1), b = run("b", 1), c = run("c", 2);
  EXPECT_EQ(a.val().documents(), 10);  // one per block of round(1/0.1) = 10 documents
  EXPECT_EQ(a.train().documents(), 90);
  EXPECT_EQ(a.train().tokens() + a.val().tokens(), 100 * 3 + 190 + 100);  // letters, digits, EOS
  auto docs = [](const TokenSplit& s) {  // the documents as strings, split at EOS
    std::vector<int32_t> t;
    for (int64_t w = 0, n = s.windows(1); w < n; ++w) {
      int32_t pair[2];
      s.read_window(w, 1, pair);
      t.push_back(pair[0]);
    }
    std::set<std::string> out;
    std::string cur;
    for (int32_t id : t) {
      if (id == 256) {
        out.insert(cur);
        cur.clear();
      } else {
        cur += char(id);
      }
    }
    return out;
  };
  // Windows of T = 1 give every token but the last of each shard: a lost EOS would merge two
  // documents, which the size check below would catch.
  std::set<std::string> va = docs(a.val()), vb = docs(b.val()), vc = docs(c.val());
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  for (const std::string& d : va) EXPECT_TRUE(d.size() == 4 || d.size() == 5) << d;
}

TEST(Data, Uint32ShardsForLargeVocabularies) {
  TempDir dir("data");
  std::string txt = dir.write("a.txt", "hello\n\nworld\n");
  PrepareOptions o = options(dir);
  o.vocab_size = 129280;
  o.eos_id = 100000;
  ASSERT_TRUE(prepare_dataset(o, {txt}, [](std::string_view s) {
                std::vector<int32_t> v = byte_tokens(s);
                for (auto& t : v) t += 70000;
                return v;
              }).is_ok());
  Result<TokenDataset> ds = TokenDataset::open(o.out_dir);
  ASSERT_TRUE(ds.is_ok()) << ds.message();
  std::vector<int32_t> t = all_tokens(ds->train());
  ASSERT_EQ(t.size(), 12u);
  EXPECT_EQ(t[0], 70000 + 'h');
  EXPECT_EQ(t[5], 100000);
  EXPECT_EQ(std::filesystem::file_size(o.out_dir + "/train-00000.tok"), 32u + 12 * 4);
  EXPECT_FALSE(ds->check_vocab(1000).is_ok());
}

TEST(Data, ShardsLargerThanOneWritePiece) {
  // 100000 bytes: the writer narrows and writes 65536 tokens at a time.
  TempDir dir("data");
  std::string doc(100000, 'a');
  for (size_t i = 0; i < doc.size(); ++i) doc[i] = char('a' + (i * 7919) % 26);
  std::string txt = dir.write("big.txt", doc);
  ASSERT_TRUE(prepare_dataset(options(dir), {txt}, byte_tokens).is_ok());
  Result<TokenDataset> ds = TokenDataset::open(dir / "data");
  ASSERT_TRUE(ds.is_ok()) << ds.message();
  ASSERT_EQ(ds->train().tokens(), 100001);
  std::vector<int32_t> w(4);
  ds->train().read_window(65534 / 3, 3, w.data());  // tokens 65532..65535 (stride 3)
  for (int i = 0; i < 4; ++i) EXPECT_EQ(w[size_t(i)], int32_t(uint8_t(doc[size_t(65532 + i)])));
  EXPECT_EQ(all_tokens(ds->train()).back(), 256);
}

TEST(Data, CorruptAndTruncatedShardsAreRejected) {
  TempDir dir("data");
  std::string txt = dir.write("a.txt", "some words here\n\nand more words\n");
  ASSERT_TRUE(prepare_dataset(options(dir), {txt}, byte_tokens).is_ok());
  std::string shard = dir / "data/train-00000.tok";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('Q');
  }
  Result<TokenDataset> ds = TokenDataset::open(dir / "data");
  ASSERT_FALSE(ds.is_ok());
  EXPECT_NE(ds.message().find("CRC-32"), std::string::npos) << ds.message();
  std::filesystem::resize_file(shard, 40);
  ds = TokenDataset::open(dir / "data");
  ASSERT_FALSE(ds.is_ok());
  EXPECT_NE(ds.message().find("truncated"), std::string::npos) << ds.message();
  EXPECT_FALSE(TokenDataset::open(dir / "nothing").is_ok());
}

TEST(Data, PermutationIsABijection) {
  for (uint64_t n : {1ull, 2ull, 3ull, 5ull, 16ull, 17ull, 1000ull}) {
    std::set<uint64_t> seen;
    for (uint64_t i = 0; i < n; ++i) seen.insert(permute_index(i, n, 12345));
    EXPECT_EQ(seen.size(), n);
    EXPECT_LT(*seen.rbegin(), n);
  }
  // Different keys give different orders.
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) same += permute_index(i, 1000, 1) == permute_index(i, 1000, 2);
  EXPECT_LT(same, 20);
}

class SamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string corpus;
    for (int d = 0; d < 60; ++d) corpus += "document " + std::to_string(d) + " text\n\n";
    std::string txt = dir_.write("c.txt", corpus);
    PrepareOptions o = options(dir_, 0.2);
    o.shard_tokens = 300;
    ASSERT_TRUE(prepare_dataset(o, {txt}, byte_tokens).is_ok());
    Result<TokenDataset> ds = TokenDataset::open(o.out_dir);
    ASSERT_TRUE(ds.is_ok()) << ds.message();
    ds_ = std::make_unique<TokenDataset>(std::move(ds.value()));
  }
  TempDir dir_{"sampler"};
  std::unique_ptr<TokenDataset> ds_;
};

TEST_F(SamplerTest, EpochVisitsEveryWindowOnceAndResumesExactly) {
  const int64_t T = 8;
  BatchSampler s(ds_->train(), T, 7);
  const int64_t n = s.windows_per_epoch();
  ASSERT_GT(n, 20);
  // One epoch in batches of 3 (the last batch rolls into epoch 1).
  std::vector<int32_t> buf(3 * (T + 1));
  std::vector<std::vector<int32_t>> seq;
  for (int64_t i = 0; i < (n + 2) / 3; ++i) {
    s.next_batch(3, buf.data());
    seq.push_back(buf);
  }
  EXPECT_EQ(s.state().epoch, n % 3 == 0 ? 0u : 1u);
  // The epoch's windows are exactly the split's windows (as a multiset), in a shuffled order.
  std::multiset<std::vector<int32_t>> epoch, all;
  std::vector<std::vector<int32_t>> in_order;
  BatchSampler probe(ds_->train(), T, 7);
  for (int64_t k = 0; k < n; ++k) {
    std::vector<int32_t> w(T + 1), v(T + 1);
    probe.next_batch(1, w.data());
    ds_->train().read_window(k, T, v.data());
    epoch.insert(w);
    all.insert(v);
    in_order.push_back(v);
  }
  EXPECT_EQ(epoch, all);
  EXPECT_EQ(probe.state().epoch, 0u);
  EXPECT_EQ(probe.state().position, uint64_t(n));
  std::vector<int32_t> first(seq[0].begin(), seq[0].begin() + T + 1);
  EXPECT_NE(first, in_order[0]);

  // Save the state mid-epoch, continue, restore into a fresh sampler: same batches.
  BatchSampler a(ds_->train(), T, 7);
  for (int i = 0; i < 5; ++i) a.next_batch(3, buf.data());
  LoaderState st = a.state();
  std::vector<int32_t> next_a(4 * (T + 1)), next_b(4 * (T + 1));
  a.next_batch(4, next_a.data());
  BatchSampler b(ds_->train(), T, 7);
  b.set_state(st);
  b.next_batch(4, next_b.data());
  EXPECT_EQ(next_a, next_b);
  // A different seed gives a different order.
  BatchSampler c(ds_->train(), T, 8);
  std::vector<int32_t> first_c(3 * (T + 1));
  c.next_batch(3, first_c.data());
  EXPECT_NE(first_c, seq[0]);
}

TEST_F(SamplerTest, ValidationBatchesAreFixed) {
  const int64_t T = 8;
  ASSERT_GT(ds_->val().windows(T), 0);
  std::vector<int32_t> a(2 * (T + 1)), b(2 * (T + 1));
  validation_batch(ds_->val(), T, 2, 1, 3, a.data());
  validation_batch(ds_->val(), T, 2, 1, 3, b.data());
  EXPECT_EQ(a, b);
  validation_batch(ds_->val(), T, 2, 0, 3, b.data());
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace dsv3
