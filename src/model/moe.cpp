#include "model/moe.h"

#include <algorithm>
#include <cstring>

#include "kernels/matmul.h"

namespace dsv3 {

void LocalMoeDispatcher::routed_experts(float* y, const float* x, int64_t N, const Routing& routing,
                                        const MoeWeights& w) {
  const int64_t E = int64_t(w.experts.size());
  const int64_t K = routing.top_k;
  const int64_t dim = w.gate.cols;
  // Counting sort of the N·K assignments by expert; within an expert, by token (stable).
  counts_.assign(size_t(E), 0);
  offsets_.assign(size_t(E + 1), 0);
  order_.resize(size_t(N * K));
  for (int64_t a = 0; a < N * K; ++a) ++counts_[size_t(routing.experts[size_t(a)])];
  for (int64_t e = 0; e < E; ++e) offsets_[size_t(e + 1)] = offsets_[size_t(e)] + counts_[size_t(e)];
  cursor_.assign(offsets_.begin(), offsets_.end() - 1);
  for (int64_t a = 0; a < N * K; ++a) order_[size_t(cursor_[size_t(routing.experts[size_t(a)])]++)] = int32_t(a);
  // Every active expert's tokens gathered into one buffer, experts in ascending order. Experts
  // with decode-sized batches run together (grouped_mlp_forward: two parallel regions for all of
  // them); larger batches one FFN per expert, each parallel inside its GEMMs.
  float* xe = xe_.get(N * K * dim);
  float* ye = ye_.get(N * K * dim);
  for (int64_t i = 0; i < N * K; ++i) {
    std::memcpy(xe + i * dim, x + (order_[size_t(i)] / K) * dim, size_t(dim) * sizeof(float));
  }
  jobs_.clear();
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = counts_[size_t(e)], off = offsets_[size_t(e)] * dim;
    if (n == 0) continue;
    if (n <= kernels::kDecodeMaxTokens) {
      jobs_.push_back({&w.experts[size_t(e)], xe + off, ye + off, n});
    } else {
      mlp_forward(ye + off, xe + off, n, w.experts[size_t(e)], mlp_);
    }
  }
  grouped_mlp_forward(jobs_, mlp_);
  // Weighted scatter-add in ascending expert order, so each token sums its contributions in that order.
  for (int64_t i = 0; i < N * K; ++i) {
    const int32_t a = order_[size_t(i)];
    const float g = routing.weights[size_t(a)];
    float* yt = y + (a / K) * dim;
    const float* src = ye + i * dim;
    for (int64_t c = 0; c < dim; ++c) yt[c] += g * src[c];
  }
}

void moe_forward(float* y, const float* x, int64_t N, const MoeWeights& w, const RouterConfig& rc,
                 MoeDispatcher& dispatcher, MoeScratch& scratch) {
  const int64_t dim = w.gate.cols;
  route(scratch.routing, x, N, w, rc);
  std::fill(y, y + N * dim, 0.0f);
  dispatcher.routed_experts(y, x, N, scratch.routing, w);
  if (w.has_shared) {
    float* z = scratch.shared_out.get(N * dim);
    mlp_forward(z, x, N, w.shared, scratch.mlp);
    for (int64_t i = 0; i < N * dim; ++i) y[i] += z[i];
  }
}

}  // namespace dsv3
