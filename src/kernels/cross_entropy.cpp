#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/parallel_for.h"

namespace dsv3::kernels {
namespace {

// max and log Σ exp(l − max) of one row, the sum in double.
void row_logsumexp(const float* l, int64_t V, float& mx, double& log_sum) {
  mx = *std::max_element(l, l + V);
  double sum = 0.0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(l[i] - mx));
  log_sum = std::log(sum);
}

}  // namespace

int64_t cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
  parallel_for(N, [&](int64_t n) {
    const int32_t y = targets[n];
    if (y < 0) {
      losses[n] = 0.0f;
      return;
    }
    DSV3_CHECK(y < V, "target {} outside the vocabulary of {}", y, V);
    const float* l = logits + n * V;
    float mx;
    double log_sum;
    row_logsumexp(l, V, mx, log_sum);
    losses[n] = float(log_sum + double(mx) - double(l[y]));
  });
  int64_t valid = 0;
  for (int64_t n = 0; n < N; ++n) valid += targets[n] >= 0;
  return valid;
}

void cross_entropy_backward(float* dlogits, float dloss, const float* logits, const int32_t* targets, int64_t N,
                            int64_t V) {
  parallel_for(N, [&](int64_t n) {
    const int32_t y = targets[n];
    if (y < 0) return;
    const float* l = logits + n * V;
    float* d = dlogits + n * V;
    float mx;
    double log_sum;
    row_logsumexp(l, V, mx, log_sum);
    for (int64_t i = 0; i < V; ++i) d[i] += dloss * float(std::exp(double(l[i] - mx) - log_sum));
    d[y] -= dloss;
  });
}

}  // namespace dsv3::kernels
