// End to end: `dsv3 info` on a written checkpoint, text and JSON.
#include <gtest/gtest.h>

#include <cstdio>

#include "io/json.h"
#include "support/checkpoint_writer.h"

namespace dsv3 {
namespace {

struct CliRun {
  int code;
  std::string out;
};

CliRun run_dsv3(const std::string& args) {
  std::string cmd = std::string(DSV3_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(InfoCliTest, ReportsCountsForAWrittenCheckpoint) {
  ModelConfig c = testing::tiny_v3_config();
  std::string dir = testing::make_temp_dir("info");
  ASSERT_TRUE(testing::write_random_checkpoint(dir, c, {.dtype = DType::F32, .n_shards = 2}).is_ok());

  CliRun text = run_dsv3("info --model " + dir);
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("214208"), std::string::npos) << text.out;  // hand count: model_stats_test.cpp
  EXPECT_NE(text.out.find("active parameters per token"), std::string::npos);
  EXPECT_NE(text.out.find("KV cache per token"), std::string::npos);

  CliRun js = run_dsv3("info --json --model " + dir);
  ASSERT_EQ(js.code, 0) << js.out;
  auto j = parse_json(js.out, "stdout");
  ASSERT_TRUE(j.is_ok()) << js.out;
  const Json& o = j.value();
  EXPECT_EQ(o["params"]["total"], 214208);
  EXPECT_EQ(o["active_params"]["total"], 124160);
  EXPECT_EQ(o["mtp_params"]["total"], 81304);
  EXPECT_EQ(o["mtp_copy_params"], 32768);
  // Every tensor is F32 here: 4 bytes per parameter, MTP and copies included.
  EXPECT_EQ(o["disk"]["by_dtype"]["F32"]["bytes"], 4 * (214208 + 81304 + 32768));
  EXPECT_EQ(o["disk"]["files"], 2);
  EXPECT_EQ(o["kv_cache_per_token"]["latent_bytes_bf16"], 2 * 120);
  EXPECT_EQ(o["kv_cache_per_token"]["mha_bytes_f32"], 4 * 432);
  EXPECT_GT(o["resident_bytes_after_load"].get<int64_t>(), 0);
  EXPECT_EQ(o["shape"]["moe_layers"], 2);

  CliRun bad = run_dsv3("info --model " + dir + "/nonexistent");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("dsv3 info: error:"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace dsv3
