// The three products of a linear layer as f32 GEMMs (kernels/gemm.h). The GEMM splits outputs
// across threads and sums every element over k in a fixed order, so the weight gradient's sum
// over tokens does not depend on the thread count.
#include "train/linear.h"

#include "kernels/gemm.h"

namespace dsv3 {

using kernels::Op;

void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t in, int64_t out) {
  kernels::gemm(y, out, x, in, Op::N, w, in, Op::T, N, out, in, false);
}

void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t in,
                     int64_t out) {
  if (N == 0) return;
  if (dx != nullptr) kernels::gemm(dx, in, dy, out, Op::N, w, in, Op::N, N, in, out, true);
  if (dw != nullptr) kernels::gemm(dw, in, dy, out, Op::T, x, in, Op::N, out, in, N, true);
}

}  // namespace dsv3
