// Softmax cross-entropy over a vocabulary, forward and backward (the loss of every prediction
// head: main model and MTP modules). Logits are f32; exponentials are f32 (within 2 ulp, the
// vectorized exp of exp_rows.h) and their sum is double, so a row's loss is accurate to a few f32
// ulps for any vocabulary size.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

// losses (N) = logsumexp(logits_n) − logits_n[targets_n]; logits (N, V). A row whose target is
// negative is ignored: its loss is 0. When `lse` is not null it receives each row's log-sum-exp
// (as the shift the backward uses), which spares the backward two passes over the logits.
// Returns the number of rows that were not ignored.
int64_t cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                              int64_t V);

// dlogits (N, V) = (accumulate ? dlogits : 0) + dloss · (softmax(logits_n) − onehot(targets_n))
// for every non-ignored row (the gradient of dloss · Σ_n losses_n); without `accumulate`, ignored
// rows are zeroed. `lse` is the forward's output for these logits, or null to recompute it (the
// results are the same bits). dlogits must not alias logits.
void cross_entropy_backward(float* dlogits, float dloss, const float* logits, const float* lse, const int32_t* targets,
                            int64_t N, int64_t V, bool accumulate);

}  // namespace dsv3::kernels
