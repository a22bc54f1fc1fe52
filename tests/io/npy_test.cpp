#include "io/npy.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "support/checkpoint_writer.h"

namespace dsv3 {
namespace {

TEST(NpyTest, RoundTripsFloat32) {
  std::string dir = testing::make_temp_dir("npy");
  std::string path = dir + "/a.npy";
  std::vector<float> v = {1.0f, -2.5f, 3.25f, 1e-8f, 65504.0f, -0.0f};
  std::vector<int64_t> shape = {2, 3};
  ASSERT_TRUE(write_npy_f32(path, v, shape).is_ok());
  EXPECT_EQ(std::filesystem::file_size(path) % 64, (v.size() * 4) % 64);  // header padded to 64
  auto a = read_npy(path);
  ASSERT_TRUE(a.is_ok()) << a.message();
  EXPECT_EQ(a->shape, shape);
  EXPECT_FALSE(a->is_f64);
  EXPECT_EQ(a->to_f32(), v);

  std::vector<int64_t> s1 = {6};
  ASSERT_TRUE(write_npy_f32(path, v, s1).is_ok());
  EXPECT_EQ(read_npy(path)->shape, s1);
  std::vector<int64_t> s0 = {};
  ASSERT_TRUE(write_npy_f32(path, std::span<const float>(v.data(), 1), s0).is_ok());
  EXPECT_EQ(read_npy(path)->numel(), 1);
  EXPECT_FALSE(write_npy_f32(path, v, std::vector<int64_t>{4}).is_ok());
}

TEST(NpyTest, RejectsCorruptFiles) {
  std::vector<uint8_t> junk = {'x', 'y'};
  EXPECT_FALSE(parse_npy(junk, "j").is_ok());
  std::string hdr = "\x93NUMPY\x01";
  hdr += '\0';
  std::string body = "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }\n";
  hdr += char(body.size());
  hdr += '\0';
  std::string s = hdr + body + "abcd";
  auto r = parse_npy(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()), "i4.npy");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.message().find("float32/float64"), std::string::npos);
}

// numpy itself reads what we write and writes what we read (skipped without python3 + numpy).
TEST(NpyTest, InteroperatesWithNumpy) {
  // Debian's python3-numpy (scripts/setup.sh) lives with /usr/bin/python3, which may not be
  // the first python3 on PATH.
  std::string py;
  for (const char* cand : {"/usr/bin/python3", "python3"}) {
    if (py.empty() && std::system((std::string(cand) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) py = cand;
  }
  if (py.empty()) GTEST_SKIP() << "numpy not available";
  std::string dir = testing::make_temp_dir("npy_np");
  std::vector<float> v = {0.5f, 1.5f, -3.0f, 7.0f};
  ASSERT_TRUE(write_npy_f32(dir + "/ours.npy", v, std::vector<int64_t>{2, 2}).is_ok());
  std::string cmd = py + " -c \"import numpy as np; a = np.load('" + dir +
                    "/ours.npy'); assert a.dtype == np.float32 and a.shape == (2, 2) and a[1, 0] == -3.0; "
                    "np.save('" + dir + "/theirs.npy', np.arange(6, dtype=np.float64).reshape(3, 2) / 4)\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto a = read_npy(dir + "/theirs.npy");
  ASSERT_TRUE(a.is_ok()) << a.message();
  EXPECT_TRUE(a->is_f64);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a->values[5], 1.25);
}

}  // namespace
}  // namespace dsv3
