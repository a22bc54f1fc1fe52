// `dsv3 bench`: inference speed of a random-weight model of a given config, next to the bound
// the machine's memory bandwidth puts on decode (all measured in the same run).
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"

namespace dsv3 {

struct BenchOptions {
  DType dtype = DType::F8_E4M3;
  // Output head storage. DeepSeek's FP8 checkpoints keep it BF16; llama.cpp-style quantized
  // models quantize it like the rest, which is what peer figures measure.
  DType head_dtype = DType::F8_E4M3;
  int64_t prompt = 512;
  int64_t gen = 128;
  // Sequences decoded together (continuous batching, as the server runs them): each step is one
  // forward over one new token of every sequence, so the weights stream once for all of them.
  int64_t batch = 1;
  int repeats = 3;  // medians over this many runs
  int64_t bandwidth_bytes = int64_t(1) << 30;  // array read by the bandwidth measurement
  uint64_t seed = 1;
};

struct BenchResult {
  double prefill_tok_s = 0;
  double decode_tok_s = 0;  // all sequences together
  double bandwidth_gb_s = 0;
  // Bytes one decode step reads: attention of every layer, dense MLPs, per MoE layer the router,
  // the shared experts and every routed expert the step's tokens chose (counted while decoding:
  // top-k for one sequence, fewer than batch x top-k when tokens share experts), the head, one
  // embedding row per sequence; plus each sequence's KV cache at the mean decode position.
  double bytes_per_step = 0;
  double weight_bytes_per_step = 0;
  double kv_bytes_per_step = 0;
  double routed_experts_per_layer = 0;  // distinct routed experts per MoE layer and step
  // The same per decoded token (per step / batch).
  double bytes_per_token = 0;
  double weight_bytes_per_token = 0;
  double kv_bytes_per_token = 0;
  double decode_bound_tok_s = 0;  // bandwidth / bytes_per_token
  double prefill_gflop_per_token = 0;
  int threads = 0;
};

// Matmul FLOPs per token of a forward (2 per multiply-add; attention over `context` tokens).
double forward_flops_per_token(const ModelConfig& cfg, int64_t context);

Result<BenchResult> run_bench(const ModelConfig& cfg, const BenchOptions& opt);

}  // namespace dsv3
