// `dsv3 bench` (infer/bench.h): the byte count behind the decode bound, and the CLI's JSON.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "infer/bench.h"
#include "kernels/dispatch.h"
#include "support/checkpoint_writer.h"
#include "support/model_fixtures.h"

namespace dsv3 {
namespace {

BenchOptions small_run(DType dtype, DType head) {
  BenchOptions o;
  o.dtype = dtype;
  o.head_dtype = head;
  o.prompt = 5;
  o.gen = 3;
  o.repeats = 1;
  o.bandwidth_bytes = int64_t(8) << 20;
  return o;
}

TEST(Bench, HeadDtypeChangesBytesPerTokenByExactlyTheHeadsBytes) {
  const ModelConfig c = testing::odd_shapes_v3_config();
  auto bf16 = run_bench(c, small_run(DType::F8_E4M3, DType::BF16));
  auto fp8 = run_bench(c, small_run(DType::F8_E4M3, DType::F8_E4M3));
  ASSERT_TRUE(bf16.is_ok()) << bf16.message();
  ASSERT_TRUE(fp8.is_ok()) << fp8.message();
  // Head (vocab, dim): 2 bytes per weight in BF16; 1 byte plus one f32 scale per 128x128 block in FP8.
  const double V = double(c.vocab_size), D = double(c.dim);
  const double blocks = double((c.vocab_size + 127) / 128) * double((c.dim + 127) / 128);
  EXPECT_DOUBLE_EQ(bf16->weight_bytes_per_token - fp8->weight_bytes_per_token, 2 * V * D - (V * D + 4 * blocks));
  for (const BenchResult* r : {&*bf16, &*fp8}) {
    EXPECT_GT(r->prefill_tok_s, 0);
    EXPECT_GT(r->decode_tok_s, 0);
    EXPECT_GT(r->bandwidth_gb_s, 0);
    EXPECT_DOUBLE_EQ(r->bytes_per_token, r->weight_bytes_per_token + r->kv_bytes_per_token);
    EXPECT_DOUBLE_EQ(r->decode_bound_tok_s, r->bandwidth_gb_s * 1e9 / r->bytes_per_token);
  }
}

// A batch shares experts: the bytes of a step count each distinct routed expert once, as measured
// while decoding, and one sequence always reads exactly its top-k.
TEST(Bench, BatchCountsEachRoutedExpertItsTokensShareOnce) {
  const ModelConfig c = testing::odd_shapes_v3_config();
  BenchOptions o = small_run(DType::F32, DType::F32);
  auto one = run_bench(c, o);
  o.batch = 4;
  auto four = run_bench(c, o);
  ASSERT_TRUE(one.is_ok()) << one.message();
  ASSERT_TRUE(four.is_ok()) << four.message();
  const double k = double(c.n_activated_experts), E = double(c.n_routed_experts);
  EXPECT_DOUBLE_EQ(one->routed_experts_per_layer, k);
  EXPECT_GT(four->routed_experts_per_layer, k);
  EXPECT_LE(four->routed_experts_per_layer, std::min(E, 4 * k));
  // F32 experts: gate, up and down of dim x moe_inter_dim; three more embedding rows.
  const double expert = 3.0 * double(c.dim) * double(c.moe_inter_dim) * 4.0;
  const double moe_layers = double(c.n_layers - c.n_dense_layers);
  EXPECT_NEAR(four->weight_bytes_per_step - one->weight_bytes_per_step,
              (four->routed_experts_per_layer - k) * moe_layers * expert + 3.0 * double(c.dim) * 4.0, 1e-6);
  EXPECT_DOUBLE_EQ(four->kv_bytes_per_step, 4.0 * one->kv_bytes_per_step);
  EXPECT_DOUBLE_EQ(four->bytes_per_step, four->weight_bytes_per_step + four->kv_bytes_per_step);
  EXPECT_DOUBLE_EQ(four->bytes_per_token, four->bytes_per_step / 4.0);
  EXPECT_DOUBLE_EQ(four->decode_bound_tok_s, four->bandwidth_gb_s * 1e9 / four->bytes_per_token);
  EXPECT_GT(four->decode_tok_s, 0);
}

TEST(Bench, RefusesABatchOutOfRange) {
  BenchOptions o = small_run(DType::F32, DType::F32);
  o.batch = 0;
  EXPECT_FALSE(run_bench(testing::odd_shapes_v3_config(), o).is_ok());
}

TEST(Bench, RefusesARunPastTheContext) {
  ModelConfig c = testing::odd_shapes_v3_config();
  BenchOptions o = small_run(DType::F32, DType::F32);
  o.prompt = c.max_position_embeddings;
  EXPECT_FALSE(run_bench(c, o).is_ok());
}

TEST(BenchCli, JsonHasTheFiguresTheDocsQuote) {
  const std::string dir = testing::make_temp_dir("bench");
  ASSERT_TRUE(testing::write_random_checkpoint(dir, testing::tiny_v3_config(), {.dtype = DType::F32}).is_ok());
  const std::string cmd = std::string(DSV3_BINARY) + " bench --config " + dir +
                          "/config.json --threads 1 --prompt 6 --gen 2 --batch 2 --repeats 1 --bandwidth-mib 8 --json";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  for (const char* key : {"prefill_tok_s", "decode_tok_s", "bandwidth_gb_s", "bytes_per_token", "decode_bound_tok_s",
                          "bytes_per_step", "routed_experts_per_layer"}) {
    ASSERT_TRUE(j.contains(key)) << key << "\n" << out;
    EXPECT_GT(j[key].get<double>(), 0) << key;
  }
  EXPECT_EQ(j["dtype"], "fp8");
  EXPECT_EQ(j["head_dtype"], "fp8");
  EXPECT_EQ(j["batch"], 2);
  // The kernel path the figures were measured on (the child inherits DSV3_KERNELS, if set).
  EXPECT_EQ(j["kernels"], std::string(kernels::kernel_path_name(kernels::kernel_path()))) << out;
}

}  // namespace
}  // namespace dsv3
