// Causal self-attention of a whole sequence for training, in the flash-attention manner (Dao et
// al. 2022, Alg. 1-2, here with query blocks only): the forward keeps one log-sum-exp per query
// row instead of the (H, T, T) probabilities, and the backward recomputes the probabilities of
// one block of queries at a time from it. Memory is O(kQueryBlock · T) per thread instead of
// O(H · T²) per sequence. attention_naive (attention.h) with start_pos = 0 is the slow twin; the
// two agree within the bound derived in tests/kernels/attention_train_test.cpp.
//
// Query block by block, the products are FP32 GEMMs (gemm.h) over the visible keys [0, s0 + rows);
// the softmax is two-pass over a full row (max, then exp), so no online rescaling is needed:
//   forward   S = Q_b·Kᵀ;  lse_s = max_t(σ·S_st) + log Σ_t exp(σ·S_st − max);  P = exp(σ·S − lse);
//             O_b = P·V
//   backward  P recomputed;  dP = dO_b·Vᵀ;  D_s = dO_s·O_s (= Σ_t P_st·dP_st);
//             dS = σ·P∘(dP − D);  dQ_b += dS·K;  dK += dSᵀ·Q_b;  dV += Pᵀ·dO_b
// Threads split the heads; within a head the query blocks run in order, so every sum has a fixed
// order and results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/attention.h"

namespace dsv3::kernels {

// out (T, H, dv) = softmax_t(scale · q_s·k_t, t <= s) · v;  q, k (T, H, dqk), v (T, H, dv).
// lse (H, T) receives each row's log Σ_t exp(scale · q_s·k_t). scale > 0.
void attention_causal_forward(HeadsView<float> out, float* lse, HeadsView<const float> q, HeadsView<const float> k,
                              HeadsView<const float> v, int64_t T, int64_t H, int64_t dqk, int64_t dv, float scale);

// Backward of attention_causal_forward (same dims) from its output `out` and `lse`:
// dq, dk (T, H, dqk) and dv (T, H, dv) ACCUMULATE.
void attention_causal_backward(HeadsView<float> dq, HeadsView<float> dk, HeadsView<float> dv,
                               HeadsView<const float> dout, HeadsView<const float> out, const float* lse,
                               HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v, int64_t T,
                               int64_t H, int64_t dqk, int64_t dv_dim, float scale);

}  // namespace dsv3::kernels
