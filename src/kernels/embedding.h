// Token embedding lookup (spec §2.1: no scaling, no position embedding) and its backward.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

// out (N, C) row n = table row tokens[n]; table (V, C) f32.
void embedding_forward(float* out, const float* table, const int32_t* tokens, int64_t N, int64_t C);

// dtable (V, C) row tokens[n] += dout row n (scatter-add). Threads split the columns and each
// column is summed in token order, so repeated tokens accumulate identically for any thread count.
void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C);

}  // namespace dsv3::kernels
