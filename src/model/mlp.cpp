#include "model/mlp.h"

#include "kernels/activation.h"

namespace dsv3 {

void mlp_forward(float* y, const float* x, int64_t N, const MlpWeights& w, MlpScratch& scratch) {
  const int64_t inter = w.w1.rows;
  float* g = scratch.gate.get(N * inter);
  float* u = scratch.up.get(N * inter);
  kernels::matmul(g, x, w.w1, N);
  kernels::matmul(u, x, w.w3, N);
  kernels::swiglu_forward(g, g, u, N * inter);
  kernels::matmul(y, g, w.w2, N);
}

}  // namespace dsv3
