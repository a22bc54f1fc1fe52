#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "io/json.h"
#include "support/checkpoint_writer.h"

namespace dsv3 {
namespace {

// A safetensors image: length prefix (or `claimed_len`), header text, `data_bytes` bytes 0,1,2...
std::vector<uint8_t> image(const std::string& header, size_t data_bytes, int64_t claimed_len = -1) {
  uint64_t n = claimed_len >= 0 ? uint64_t(claimed_len) : header.size();
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(uint8_t(i));
  return out;
}

Result<SafetensorsFile> parse(const std::vector<uint8_t>& bytes) {
  return SafetensorsFile::from_memory(bytes, "t.safetensors");
}

// Expects a parse error whose message contains every fragment.
void expect_error(const std::vector<uint8_t>& bytes, std::initializer_list<const char*> fragments) {
  auto r = parse(bytes);
  ASSERT_FALSE(r.is_ok()) << "parsed a corrupt file";
  for (const char* f : fragments) EXPECT_NE(r.message().find(f), std::string::npos) << r.message();
  EXPECT_EQ(r.message().rfind("t.safetensors", 0), 0u) << r.message();
}

TEST(SafetensorsTest, ParsesValidHeader) {
  auto bytes = image(R"({"__metadata__": {"format": "pt"}, "b": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [8, 20]},
                         "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "s": {"dtype": "F32", "shape": [], "data_offsets": [20, 24]},
                         "z": {"dtype": "F8_E4M3", "shape": [0, 5], "data_offsets": [24, 24]}})",
                     24);
  auto r = parse(bytes);
  ASSERT_TRUE(r.is_ok()) << r.message();
  const SafetensorsFile& f = r.value();
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorInfo* b = f.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->nbytes, 12u);
  EXPECT_EQ(b->numel(), 6);
  EXPECT_EQ(b->data[0], 8);  // zero-copy: points at data byte 8
  EXPECT_EQ(f.find("s")->numel(), 1);
  EXPECT_EQ(f.find("z")->nbytes, 0u);
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST(SafetensorsTest, RejectsTruncatedAndLyingLengths) {
  expect_error({1, 2, 3}, {"too short"});
  expect_error(image("{}", 0, 1000), {"header length 1000 exceeds the file size"});
  expect_error(image("{}", 0, int64_t(1) << 62), {"exceeds the file size"});
  expect_error(image("{\"a\": ", 0), {"invalid JSON"});
  expect_error(image("[1, 2]", 0), {"not a JSON object"});
  // Two entries for one tensor name: which bytes are "w"? Refused, not last-one-wins.
  expect_error(image(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                        "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                     8),
               {"invalid JSON", "\"w\" appears twice"});
  expect_error(image("1", 0), {"too short for a JSON object"});
}

TEST(SafetensorsTest, RejectsBadTensorEntries) {
  auto one = [](const std::string& entry, size_t data = 16) { return image("{\"w\": " + entry + "}", data); };
  expect_error(one("3"), {"tensor 'w'", "must be an object"});
  expect_error(one(R"({"shape": [2], "data_offsets": [0, 8]})"), {"'w'", "dtype"});
  expect_error(one(R"({"dtype": "Q4_K", "shape": [2], "data_offsets": [0, 8]})"), {"'w'", "unsupported dtype \"Q4_K\""});
  expect_error(one(R"({"dtype": "F32", "shape": 2, "data_offsets": [0, 8]})"), {"'w'", "shape"});
  expect_error(one(R"({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})"), {"'w'", "non-negative integers"});
  expect_error(one(R"({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]})"), {"'w'", "non-negative integers"});
  expect_error(one(R"({"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]})"), {"'w'", "non-negative integers"});
  expect_error(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0]})"), {"'w'", "[begin, end]"});
  expect_error(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]})"), {"'w'", "begin > end"});
  expect_error(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]})"), {"'w'", "non-negative"});
  expect_error(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [8, 24]})"), {"'w'", "end beyond the data section"});
  expect_error(one(R"({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]})"), {"'w'", "hold 8 bytes", "needs 12"});
  expect_error(one(R"({"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]})"),
               {"'w'", "too large"});
  expect_error(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 18446744073709551615]})"), {"'w'"});
  // Empty, yet a prefix of the shape overflows int64: numel() must stay defined.
  expect_error(one(R"({"dtype": "F32", "shape": [4611686018427387904, 2, 0], "data_offsets": [0, 0]})"),
               {"'w'", "too large"});
  expect_error(image(R"({"__metadata__": {"k": 1}})", 0), {"__metadata__", "'k'"});
  expect_error(image(R"({"__metadata__": [1]})", 0), {"__metadata__"});
}

TEST(SafetensorsTest, RejectsOverlappingTensors) {
  expect_error(image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                     16),
               {"'a' and 'b' overlap"});
  // A tensor nested inside a larger one.
  expect_error(image(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                         "b": {"dtype": "U8", "shape": [2], "data_offsets": [6, 8]}})",
                     16),
               {"overlap"});
  // Touching is fine, and so are empty tensors anywhere.
  EXPECT_TRUE(parse(image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                              "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                          16))
                  .is_ok());
}

TEST(SafetensorsTest, WriterRoundTripsWithSortedAlignedHeader) {
  std::string dir = testing::make_temp_dir("st_rt");
  std::string path = dir + "/m.safetensors";
  std::vector<float> f32 = {1.0f, 2.0f, 3.0f};
  std::vector<uint16_t> bf16 = {0x3F80, 0x4000, 0x4040, 0x4080, 0x40A0};
  std::vector<uint8_t> f8 = {0x38, 0x40, 0x7E};
  auto as_bytes = [](const auto& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(v[0]));
  };
  std::vector<TensorData> ts = {{"zeta.f8", DType::F8_E4M3, {3}, as_bytes(f8)},
                                {"beta.bf16", DType::BF16, {5}, as_bytes(bf16)},
                                {"alpha.f32", DType::F32, {3, 1}, as_bytes(f32)}};
  ASSERT_TRUE(write_safetensors(path, ts, {{"format", "pt"}}).is_ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto r = SafetensorsFile::open(path);
  ASSERT_TRUE(r.is_ok()) << r.message();
  ASSERT_EQ(r->tensors().size(), 3u);
  EXPECT_EQ(r->metadata().at("format"), "pt");
  for (const TensorData& t : ts) {
    const TensorInfo* info = r->find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->dtype, t.dtype);
    EXPECT_EQ(info->shape, t.shape);
    ASSERT_EQ(info->nbytes, t.bytes.size());
    EXPECT_EQ(std::memcmp(info->data, t.bytes.data(), info->nbytes), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(info->data) % dtype_size(info->dtype), 0u) << t.name;
    EXPECT_EQ(info->file, path);
  }
  // Header: 8-byte multiple, keys sorted, padded with spaces.
  auto mapped = MappedFile::open(path);
  ASSERT_TRUE(mapped.is_ok());
  uint64_t n = 0;
  std::memcpy(&n, mapped->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  std::string header(reinterpret_cast<const char*>(mapped->data() + 8), n);
  EXPECT_LT(header.find("__metadata__"), header.find("alpha.f32"));
  EXPECT_LT(header.find("alpha.f32"), header.find("beta.bf16"));
  EXPECT_LT(header.find("beta.bf16"), header.find("zeta.f8"));
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));

  std::vector<TensorData> dup = {ts[0], ts[0]};
  EXPECT_NE(write_safetensors(path, dup).message().find("duplicate"), std::string::npos);
  std::vector<TensorData> wrong = {{"w", DType::F32, {4}, as_bytes(f32)}};
  EXPECT_NE(write_safetensors(path, wrong).message().find("12 bytes given for shape [4]"), std::string::npos);
}

}  // namespace
}  // namespace dsv3
