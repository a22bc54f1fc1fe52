#include "model/gate.h"

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "core/parallel_for.h"
#include "kernels/activation.h"

namespace dsv3 {

RouterConfig RouterConfig::from(const ModelConfig& cfg) {
  RouterConfig rc;
  rc.n_experts = cfg.n_routed_experts;
  rc.top_k = cfg.n_activated_experts;
  rc.n_groups = cfg.n_expert_groups;
  rc.top_groups = cfg.n_limited_groups;
  rc.score_func = cfg.score_func;
  rc.method = cfg.topk_method;
  rc.normalize = cfg.norm_topk_prob;
  rc.route_scale = float(cfg.route_scale);
  return rc;
}

void Routing::resize(int64_t n, int64_t k, int64_t n_experts) {
  n_tokens = n;
  top_k = k;
  experts.resize(size_t(n * k));
  weights.resize(size_t(n * k));
  scores.resize(size_t(n * n_experts));
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Indices of the k largest values of v[0..n), largest first; ties -> lower index first.
void top_k_indices(int32_t* out, const float* v, int64_t n, int64_t k) {
  for (int64_t j = 0; j < k; ++j) {
    int32_t best = -1;
    for (int64_t i = 0; i < n; ++i) {
      bool taken = false;
      for (int64_t q = 0; q < j; ++q) taken |= out[q] == i;
      if (taken) continue;
      if (best < 0 || v[i] > v[best]) best = int32_t(i);
    }
    out[j] = best;
  }
}

}  // namespace

void route_token(int32_t* experts, float* weights, const float* s, std::span<const float> bias,
                 const RouterConfig& rc, float* work) {
  const int64_t E = rc.n_experts;
  float* sel = work;  // selection scores s + b, masked by group
  for (int64_t e = 0; e < E; ++e) sel[e] = s[e] + (bias.empty() ? 0.0f : bias[size_t(e)]);

  if (rc.n_groups > 1 && rc.method != TopkMethod::Greedy) {
    const int64_t per = E / rc.n_groups;
    float group_score[64];
    DSV3_CHECK(rc.n_groups <= 64, "n_group {} > 64", rc.n_groups);
    for (int64_t g = 0; g < rc.n_groups; ++g) {
      const float* v = sel + g * per;
      if (rc.method == TopkMethod::NoauxTc) {  // sum of the top-2 biased scores of the group
        int32_t top2[2];
        int64_t k2 = std::min<int64_t>(2, per);
        top_k_indices(top2, v, per, k2);
        group_score[g] = 0.0f;
        for (int64_t q = 0; q < k2; ++q) group_score[g] += v[top2[q]];
      } else {  // group_limited_greedy (V2): max of the group
        group_score[g] = *std::max_element(v, v + per);
      }
    }
    int32_t keep[64];
    top_k_indices(keep, group_score, rc.n_groups, rc.top_groups);
    for (int64_t g = 0; g < rc.n_groups; ++g) {
      bool kept = std::find(keep, keep + rc.top_groups, int32_t(g)) != keep + rc.top_groups;
      if (!kept) std::fill(sel + g * per, sel + (g + 1) * per, kNegInf);
    }
  }

  top_k_indices(experts, sel, E, rc.top_k);
  float sum = 0.0f;
  for (int64_t j = 0; j < rc.top_k; ++j) {
    weights[j] = s[experts[j]];
    sum += weights[j];
  }
  for (int64_t j = 0; j < rc.top_k; ++j) {
    if (rc.normalize) weights[j] /= sum;
    weights[j] *= rc.route_scale;
  }
}

void route(Routing& out, const float* x, int64_t N, const MoeWeights& w, const RouterConfig& rc) {
  const int64_t E = rc.n_experts;
  out.resize(N, rc.top_k, E);
  kernels::matmul(out.scores.data(), x, w.gate, N);  // router logits, f32
  parallel_for(N, [&](int64_t t) {
    float* s = out.scores.data() + t * E;
    if (rc.score_func == ScoreFunc::Sigmoid) {
      for (int64_t e = 0; e < E; ++e) s[e] = kernels::sigmoid(s[e]);
    } else {
      kernels::softmax_row(s, E);
    }
    thread_local std::vector<float> work;
    if (int64_t(work.size()) < E) work.resize(size_t(E));
    route_token(out.experts.data() + t * rc.top_k, out.weights.data() + t * rc.top_k, s, w.bias, rc,
                work.data());
  });
}

}  // namespace dsv3
