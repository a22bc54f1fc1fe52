#include "kernels/embedding.h"

#include <cstring>

#include "core/parallel_for.h"

namespace dsv3::kernels {

void embedding_forward(float* out, const float* table, const int32_t* tokens, int64_t N, int64_t C) {
  parallel_for(N, [&](int64_t n) {
    std::memcpy(out + n * C, table + int64_t(tokens[n]) * C, size_t(C) * sizeof(float));
  });
}

void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C) {
  parallel_chunks(C, [&](int64_t c0, int64_t c1) {
    for (int64_t n = 0; n < N; ++n) {
      float* d = dtable + int64_t(tokens[n]) * C;
      const float* g = dout + n * C;
      for (int64_t c = c0; c < c1; ++c) d[c] += g[c];
    }
  });
}

}  // namespace dsv3::kernels
