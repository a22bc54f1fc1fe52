// Tiny random Hugging Face checkpoints for tests: config.json + safetensors (optionally sharded
// with an index), F32, BF16 or block-FP8 weights, deterministic from a seed. Every tensor's
// values depend only on (seed, tensor name), so sharding or dtype changes do not reshuffle them.
//
//   auto cfg = dsv3::testing::tiny_v3_config();
//   ASSERT_TRUE(dsv3::testing::write_random_checkpoint(dir, cfg, {.dtype = DType::BF16}).is_ok());
//   auto model = dsv3::load_model(dir);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"

namespace dsv3::testing {

struct RandomCheckpointOptions {
  uint64_t seed = 1;
  // F32 or BF16: every tensor in that dtype (router bias always F32). F8_E4M3: the linear
  // projections of decoder layers as E4M3 + 128x128 F32 block scales, the rest BF16 (the
  // layout DeepSeek publishes); config.json then carries the FP8 quantization_config.
  DType dtype = DType::F32;
  float init_std = 0.05f;  // matrices ~ N(0, init_std²)
  float norm_std = 0.1f;   // norm weights ~ 1 + N(0, norm_std²)
  float bias_std = 0.1f;   // router bias ~ N(0, bias_std²)
  int n_shards = 1;        // > 1: model-0000i-of-0000N.safetensors + model.safetensors.index.json
  bool mtp_copies = true;  // write the MTP layers' embed_tokens / shared_head.head copies
};

// Small configurations (all pass validate_model_config):
// V3 style: q_lora, sigmoid + noaux_tc with 4 groups, router bias, YaRN, 1 MTP layer,
// v_head_dim != qk_nope_head_dim.
ModelConfig tiny_v3_config();
// V2-Lite style: no q_lora (single q_proj), softmax + greedy, no bias, norm_topk_prob false,
// YaRN with mscale = mscale_all_dim = 0.707, 2 shared experts, no MTP.
ModelConfig tiny_v2_lite_config();
// Odd sizes: dim 72, q_lora 40, kv_lora 24, 3 heads, rope 6; nothing a multiple of 8 or a power of 2.
ModelConfig odd_dims_config();
// Dimensions above 128 and not multiples of it (dim 200, q_lora 136, kv_lora 160 ...), for FP8
// partial edge blocks.
ModelConfig fp8_edge_config();

// config.json text for cfg (round-trips through parse_model_config).
std::string config_to_json(const ModelConfig& cfg);

// A tensor with its own storage.
struct OwnedTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// The random tensors of a checkpoint for cfg (in for_each_tensor order, scales after their weight).
std::vector<OwnedTensor> random_tensors(const ModelConfig& cfg, const RandomCheckpointOptions& opt);
// Writes config.json (with fp8_weights set iff any tensor is F8_E4M3) and the tensors.
Status write_checkpoint(const std::string& dir, const ModelConfig& cfg, const std::vector<OwnedTensor>& tensors,
                        int n_shards = 1);
// Creates `dir` if needed and writes config.json + a random checkpoint.
Status write_random_checkpoint(const std::string& dir, const ModelConfig& cfg, const RandomCheckpointOptions& opt = {});

// A fresh empty directory under the system temp dir (unique per call; removed at exit).
std::string make_temp_dir(const std::string& tag);

}  // namespace dsv3::testing
