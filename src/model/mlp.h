// SwiGLU feed-forward (spec §2.6): FFN(x) = w2( silu(w1·x) ⊙ (w3·x) ). Used by the dense layers,
// every routed expert and the shared experts.
#pragma once

#include <cstdint>

#include "model/weights.h"
#include "model/workspace.h"

namespace dsv3 {

struct MlpScratch {
  Scratch gate, up;
};

// y (N, dim) = FFN(x (N, dim)). Overwrites y; y must not alias x.
void mlp_forward(float* y, const float* x, int64_t N, const MlpWeights& w, MlpScratch& scratch);

}  // namespace dsv3
