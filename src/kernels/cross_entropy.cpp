#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/parallel_for.h"
#include "kernels/exp_rows.h"

namespace dsv3::kernels {
namespace {

// max and log Σ exp(l − max) of one row: f32 exponentials (each within 2 ulp, exp_rows.h; the
// row's loss needs no more) summed in double.
void row_logsumexp(const float* l, int64_t V, float& mx, double& log_sum) {
  mx = row_max(l, V);
  log_sum = std::log(row_sum_exp(l, V, 1.0f, mx));
}

// The shift that turns a row's exponentials into probabilities: p_i = exp(l_i − shift).
float row_shift(const float* l, int64_t V) {
  float mx;
  double log_sum;
  row_logsumexp(l, V, mx, log_sum);
  return float(double(mx) + log_sum);
}

}  // namespace

int64_t cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                              int64_t V) {
  parallel_for(N, [&](int64_t n) {
    const int32_t y = targets[n];
    if (y < 0) {
      losses[n] = 0.0f;
      if (lse != nullptr) lse[n] = 0.0f;
      return;
    }
    DSV3_CHECK(y < V, "target {} outside the vocabulary of {}", y, V);
    const float* l = logits + n * V;
    float mx;
    double log_sum;
    row_logsumexp(l, V, mx, log_sum);
    losses[n] = float(log_sum + double(mx) - double(l[y]));
    if (lse != nullptr) lse[n] = float(double(mx) + log_sum);
  });
  int64_t valid = 0;
  for (int64_t n = 0; n < N; ++n) valid += targets[n] >= 0;
  return valid;
}

void cross_entropy_backward(float* dlogits, float dloss, const float* logits, const float* lse, const int32_t* targets,
                            int64_t N, int64_t V, bool accumulate) {
  parallel_for(N, [&](int64_t n) {
    const int32_t y = targets[n];
    float* d = dlogits + n * V;
    if (y < 0) {
      if (!accumulate) std::fill(d, d + V, 0.0f);
      return;
    }
    const float* l = logits + n * V;
    const float shift = lse != nullptr ? lse[n] : row_shift(l, V);
    row_exp(d, l, V, 1.0f, shift, dloss, accumulate);
    d[y] -= dloss;
  });
}

}  // namespace dsv3::kernels
