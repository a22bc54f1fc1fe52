// SwiGLU feed-forward (spec §2.6): FFN(x) = w2( silu(w1·x) ⊙ (w3·x) ). Used by the dense layers,
// every routed expert and the shared experts.
//
// Decode-sized batches (at most kernels::kDecodeMaxTokens tokens per FFN) go through
// grouped_mlp_forward: any number of FFNs in two parallel regions, where three matmuls per FFN
// would each be a fork/join over a few hundred KB of weights (an expert's matrices), which at
// batch 1 costs as much as streaming them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/weights.h"
#include "model/workspace.h"

namespace dsv3 {

struct MlpScratch {
  Scratch gate, up;
  std::vector<int64_t> hidden_offset, hidden_rows, out_rows;  // grouped_mlp_forward bookkeeping
};

// y (N, dim) = FFN(x (N, dim)). Overwrites y; y must not alias x.
void mlp_forward(float* y, const float* x, int64_t N, const MlpWeights& w, MlpScratch& scratch);

// One FFN of a group: y (n, dim) = FFN_w(x (n, dim)), rows at stride dim. y must not alias x.
struct FfnJob {
  const MlpWeights* w = nullptr;
  const float* x = nullptr;
  float* y = nullptr;
  int64_t n = 0;  // tokens, at most kernels::kDecodeMaxTokens
};

// Every job, in two parallel regions: (1) a static share of all jobs' hidden rows per thread,
// gate and up projections with SwiGLU applied in place; (2) a static share of all jobs' output
// features, the down projections. Each output is the same FMA chain mlp_forward's decode kernels
// compute (they sum every row in an order fixed by K, whatever the split), so results equal
// mlp_forward bit for bit, for any thread count.
void grouped_mlp_forward(std::span<const FfnJob> jobs, MlpScratch& scratch);

}  // namespace dsv3
