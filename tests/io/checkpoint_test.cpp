#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/atomic_file.h"
#include "io/json.h"
#include "support/checkpoint_writer.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  std::vector<std::vector<float>> storage;
  std::vector<TensorData> tensors;
  Fixture(int n) {
    for (int i = 0; i < n; ++i) {
      storage.push_back(std::vector<float>(size_t(4 + i), float(i)));
    }
    for (int i = 0; i < n; ++i) {
      const auto& v = storage[size_t(i)];
      tensors.push_back({fmt::format("t{:02d}", i), DType::F32, {int64_t(v.size())},
                         std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4)});
    }
  }
};

void expect_error(const std::string& path, std::initializer_list<const char*> fragments) {
  auto r = Checkpoint::open(path);
  ASSERT_FALSE(r.is_ok());
  for (const char* f : fragments) EXPECT_NE(r.message().find(f), std::string::npos) << r.message();
}

Json read_index(const std::string& dir) {
  return Json::parse(read_text_file(dir + "/" + Checkpoint::kIndexFile).value());
}

void write_index(const std::string& dir, const Json& j) {
  ASSERT_TRUE(write_file_atomic(dir + "/" + Checkpoint::kIndexFile, j.dump()).is_ok());
}

TEST(CheckpointTest, ShardedRoundTrip) {
  Fixture fx(10);
  std::string dir = testing::make_temp_dir("ck_shard");
  ASSERT_TRUE(write_sharded_safetensors(dir, fx.tensors, 3).is_ok());
  EXPECT_TRUE(fs::exists(dir + "/model-00003-of-00003.safetensors"));
  Json index = read_index(dir);
  EXPECT_EQ(index["metadata"]["total_size"], 4 * (4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13));
  auto ck = Checkpoint::open(dir);
  ASSERT_TRUE(ck.is_ok()) << ck.message();
  EXPECT_EQ(ck->size(), 10u);
  EXPECT_EQ(ck->files().size(), 3u);
  EXPECT_EQ(ck->names().front(), "t00");
  const TensorInfo* t = ck->find("t07");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape[0], 11);
  EXPECT_EQ(reinterpret_cast<const float*>(t->data)[3], 7.0f);
  EXPECT_EQ(t->file, dir + "/" + index["weight_map"]["t07"].get<std::string>());
  EXPECT_NE(ck->describe("t07").find(t->file), std::string::npos);
  EXPECT_NE(ck->describe("nope").find("not in"), std::string::npos);
  // Moving keeps every view valid.
  Checkpoint moved = std::move(ck.value());
  EXPECT_EQ(moved.find("t07"), t);
}

TEST(CheckpointTest, IndexMustMatchShards) {
  Fixture fx(6);
  std::string dir = testing::make_temp_dir("ck_idx");
  ASSERT_TRUE(write_sharded_safetensors(dir, fx.tensors, 2).is_ok());
  Json good = read_index(dir);
  std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";

  Json j = good;
  j["weight_map"]["t99"] = shard1;
  write_index(dir, j);
  expect_error(dir, {shard1.c_str(), "'t99'", "does not contain it"});

  j = good;
  j["weight_map"].erase("t00");
  write_index(dir, j);
  expect_error(dir, {shard1.c_str(), "'t00'", "not in model.safetensors.index.json"});

  j = good;
  j["weight_map"]["t00"] = shard2;
  write_index(dir, j);
  expect_error(dir, {"'t00'", "routed to"});

  j = good;
  j["weight_map"]["t00"] = "model-00009-of-00009.safetensors";
  write_index(dir, j);
  expect_error(dir, {"model-00009-of-00009.safetensors", "does not exist"});

  j = good;
  j["weight_map"]["t00"] = "../elsewhere.safetensors";
  write_index(dir, j);
  expect_error(dir, {"weight_map['t00']", "shard file name"});

  write_index(dir, Json::parse(R"({"weight_map": [1]})"));
  expect_error(dir, {"weight_map", "must be an object"});
  ASSERT_TRUE(write_file_atomic(dir + "/" + Checkpoint::kIndexFile, "{oops").is_ok());
  expect_error(dir, {"model.safetensors.index.json", "invalid JSON"});

  write_index(dir, good);
  EXPECT_TRUE(Checkpoint::open(dir).is_ok());
}

TEST(CheckpointTest, WithoutIndexUsesAllFilesAndRejectsDuplicates) {
  Fixture fx(4);
  std::string dir = testing::make_temp_dir("ck_noidx");
  std::span<const TensorData> all(fx.tensors);
  ASSERT_TRUE(write_safetensors(dir + "/b.safetensors", all.subspan(0, 2)).is_ok());
  ASSERT_TRUE(write_safetensors(dir + "/a.safetensors", all.subspan(2, 2)).is_ok());
  auto ck = Checkpoint::open(dir);
  ASSERT_TRUE(ck.is_ok()) << ck.message();
  EXPECT_EQ(ck->size(), 4u);
  EXPECT_EQ(ck->files()[0]->path(), dir + "/a.safetensors");  // sorted
  // A single file can be opened directly.
  auto one = Checkpoint::open(dir + "/a.safetensors");
  ASSERT_TRUE(one.is_ok());
  EXPECT_EQ(one->size(), 2u);

  ASSERT_TRUE(write_safetensors(dir + "/c.safetensors", all.subspan(0, 1)).is_ok());
  expect_error(dir, {"'t00'", "also in"});

  expect_error(testing::make_temp_dir("ck_empty"), {"no model.safetensors.index.json and no *.safetensors"});
  expect_error(dir + "/missing", {"no such file"});
}

TEST(CheckpointTest, TruncatedShardNamesFileAndTensor) {
  Fixture fx(3);
  std::string dir = testing::make_temp_dir("ck_trunc");
  std::string path = dir + "/model.safetensors";
  ASSERT_TRUE(write_safetensors(path, fx.tensors).is_ok());
  fs::resize_file(path, fs::file_size(path) - 3);
  expect_error(dir, {path.c_str(), "tensor 't", "end beyond the data section"});
  fs::resize_file(path, 5);
  expect_error(dir, {path.c_str(), "too short"});
}

}  // namespace
}  // namespace dsv3
