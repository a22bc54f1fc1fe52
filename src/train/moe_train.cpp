// SwiGLU MLP, router and MoE layer for training: forward with saved activations and backward.
#include <algorithm>
#include <cstring>
#include <limits>

#include "core/parallel_for.h"
#include "kernels/activation.h"
#include "train/layer_train.h"
#include "train/linear.h"

namespace dsv3 {

void mlp_train_forward(float* y, float* gate, float* up, float* act, const float* x, const LinearInput& x_in,
                       const MlpParams& p, int64_t N, int64_t dim, Precision precision) {
  const int64_t I = p.inter;
  linear_forward(gate, x_in, x, p.w1, N, dim, I, precision);
  linear_forward(up, x_in, x, p.w3, N, dim, I, precision);
  kernels::swiglu_forward(act, gate, up, N * I);
  linear_forward(y, act, p.w2, N, I, dim, precision);
}

void mlp_train_backward(float* dx, const MlpParams& g, const float* dy, const LinearInput& x_in, const float* gate,
                        const float* up, const MlpParams& p, int64_t N, int64_t dim, StepScratch& s,
                        Precision precision) {
  const int64_t I = p.inter;
  kernels::swiglu_forward(s.act, gate, up, N * I);  // recomputed rather than saved
  std::fill(s.da, s.da + N * I, 0.0f);
  linear_backward(s.da, g.w2, dy, s.act, p.w2, N, I, dim, precision);
  std::fill(s.dg, s.dg + N * I, 0.0f);
  std::fill(s.du, s.du + N * I, 0.0f);
  kernels::swiglu_backward(s.dg, s.du, s.da, gate, up, N * I);
  linear_backward(dx, g.w1, s.dg, x_in, p.w1, N, dim, I, precision);
  linear_backward(dx, g.w3, s.du, x_in, p.w3, N, dim, I, precision);
}

void mlp_train_forward(float* y, float* gate, float* up, float* act, const float* x, const MlpParams& p, int64_t N,
                       int64_t dim, Precision precision) {
  mlp_train_forward(y, gate, up, act, x, f32_input(x), p, N, dim, precision);
}

void mlp_train_backward(float* dx, const MlpParams& g, const float* dy, const float* x, const float* gate,
                        const float* up, const MlpParams& p, int64_t N, int64_t dim, StepScratch& s,
                        Precision precision) {
  mlp_train_backward(dx, g, dy, f32_input(x), gate, up, p, N, dim, s, precision);
}

void gate_weights_backward(float* ds, const float* dw, const float* s, const int32_t* experts,
                           const RouterConfig& rc) {
  const int64_t K = rc.top_k;
  if (!rc.normalize) {
    for (int64_t j = 0; j < K; ++j) ds[experts[j]] += rc.route_scale * dw[j];
    return;
  }
  // w_j = rs·s_j/Z with Z = Σ_sel s: ∂/∂s_j = rs·(dw_j/Z − Σ_k dw_k·s_k/Z²).
  float z = 0.0f;
  for (int64_t j = 0; j < K; ++j) z += s[experts[j]];
  double dot = 0.0;
  for (int64_t j = 0; j < K; ++j) dot += double(dw[j]) * double(s[experts[j]]);
  for (int64_t j = 0; j < K; ++j)
    ds[experts[j]] += rc.route_scale * float(double(dw[j]) / z - dot / (double(z) * z));
}

double balance_loss_forward(float* f, const float* s, int64_t T, int64_t E, int64_t K, float* work) {
  constexpr float kTaken = -std::numeric_limits<float>::infinity();
  std::fill(f, f + E, 0.0f);
  double loss_num = 0.0;
  // Counts of the unbiased top-K (ties to the lower index).
  for (int64_t t = 0; t < T; ++t) {
    const float* st = s + t * E;
    std::copy(st, st + E, work);
    for (int64_t j = 0; j < K; ++j) {
      int64_t best = 0;
      for (int64_t e = 1; e < E; ++e)
        if (work[e] > work[best]) best = e;
      f[best] += 1.0f;
      work[best] = kTaken;
    }
  }
  const float fscale = float(double(E) / double(K * T));
  for (int64_t e = 0; e < E; ++e) f[e] *= fscale;
  // Σ_i f_i·P_i = (1/T)·Σ_t Σ_i f_i·s_{i,t}/Σ_j s_{j,t}
  for (int64_t t = 0; t < T; ++t) {
    const float* st = s + t * E;
    double sum = 0.0, fs = 0.0;
    for (int64_t e = 0; e < E; ++e) {
      sum += st[e];
      fs += double(f[e]) * st[e];
    }
    loss_num += fs / sum;
  }
  return loss_num / double(T);
}

void balance_loss_backward(float* ds, float dloss, const float* f, const float* s, int64_t T, int64_t E) {
  parallel_for(T, [&](int64_t t) {
    const float* st = s + t * E;
    double sum = 0.0, fs = 0.0;
    for (int64_t e = 0; e < E; ++e) {
      sum += st[e];
      fs += double(f[e]) * st[e];
    }
    // ∂/∂s_j of (1/T)·Σ_i f_i·s_i/S = (1/T)·(f_j/S − Σ_i f_i·s_i/S²)
    const double k = double(dloss) / double(T);
    for (int64_t e = 0; e < E; ++e) ds[t * E + e] += float(k * (double(f[e]) / sum - fs / (sum * sum)));
  });
}

double moe_train_forward(float* y, FfnActs& a, const LayerParams& p, std::span<const float> bias, int64_t* counts,
                         const LayerContext& ctx) {
  const ModelConfig& c = *ctx.cfg;
  const RouterConfig& rc = ctx.router;
  StepScratch& s = *ctx.scratch;
  const int64_t N = ctx.B * ctx.T, D = c.dim, E = rc.n_experts, K = rc.top_k, Ie = c.moe_inter_dim;
  // Router (spec §3 steps 1-6): affinities in f32, selection with the bias, gate weights.
  linear_forward(a.s, a.xn, p.gate, N, D, E);
  parallel_for(N, [&](int64_t t) {
    float* st = a.s + t * E;
    if (rc.score_func == ScoreFunc::Sigmoid) {
      for (int64_t e = 0; e < E; ++e) st[e] = kernels::sigmoid(st[e]);
    } else {
      kernels::softmax_row(st, E);
    }
    route_token(a.experts + t * K, a.weights + t * K, st, bias, rc, s.route + t * E);
  });
  // Stable counting sort of the N·K assignments by expert.
  std::fill(counts, counts + E, 0);
  for (int64_t i = 0; i < N * K; ++i) ++counts[a.experts[i]];
  auto fill_offsets = [&] {
    a.offsets[0] = 0;
    for (int64_t e = 0; e < E; ++e) a.offsets[e + 1] = a.offsets[e] + counts[e];
  };
  fill_offsets();
  for (int64_t i = 0; i < N * K; ++i) {
    const int64_t r = a.offsets[a.experts[i]]++;
    a.order[r] = int32_t(i);
    a.row_of[i] = int32_t(r);
  }
  fill_offsets();
  // Each expert over its gathered tokens; outputs kept unweighted (the gate weight's gradient needs them).
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = counts[e], r0 = a.offsets[e];
    if (n == 0) continue;
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(s.xe + i * D, a.xn + (a.order[r0 + i] / K) * D, size_t(D) * sizeof(float));
    mlp_train_forward(a.ey + r0 * D, a.eg + r0 * Ie, a.eu + r0 * Ie, s.act, s.xe, p.experts[size_t(e)], n, D,
                      ctx.precision);
  }
  // The SwiGLU inputs kept for backward in their cache format (V3 §3.3.3).
  cache_store(a.eg_in, a.eg, N * K, Ie, ctx.precision);
  cache_store(a.eu_in, a.eu, N * K, Ie, ctx.precision);
  // Combine: y_t = Σ_j w_{t,j}·ey_{t,j}, slots in routing order.
  parallel_for(N, [&](int64_t t) {
    float* yt = y + t * D;
    std::fill(yt, yt + D, 0.0f);
    for (int64_t j = 0; j < K; ++j) {
      const float w = a.weights[t * K + j];
      const float* src = a.ey + int64_t(a.row_of[t * K + j]) * D;
      for (int64_t d = 0; d < D; ++d) yt[d] += w * src[d];
    }
  });
  if (p.has_shared) {
    mlp_train_forward(s.xe, a.g, a.u, s.act, a.xn, p.shared, N, D, ctx.precision);
    for (int64_t i = 0; i < N * D; ++i) y[i] += s.xe[i];
    cache_store(a.g_in, a.g, N, p.shared.inter, ctx.precision);
    cache_store(a.u_in, a.u, N, p.shared.inter, ctx.precision);
  }
  if (ctx.balance_alpha == 0.0) return 0.0;
  double loss = 0.0;
  for (int64_t b = 0; b < ctx.B; ++b)
    loss += balance_loss_forward(a.f + b * E, a.s + b * ctx.T * E, ctx.T, E, K, s.route);
  return ctx.balance_alpha * loss / double(ctx.B);
}

void moe_train_backward(float* dxn, const LayerParams& g, const float* dy, const FfnActs& a, const LayerParams& p,
                        const LayerContext& ctx) {
  const ModelConfig& c = *ctx.cfg;
  const RouterConfig& rc = ctx.router;
  StepScratch& s = *ctx.scratch;
  const int64_t N = ctx.B * ctx.T, D = c.dim, E = rc.n_experts, K = rc.top_k, Ie = c.moe_inter_dim;
  // The SwiGLU inputs decoded from their caches (no-ops for f32); the SwiGLU output is recomputed
  // from them in mlp_train_backward.
  cache_load(a.eg, a.eg_in, N * K, Ie);
  cache_load(a.eu, a.eu_in, N * K, Ie);
  if (p.has_shared) {
    cache_load(a.g, a.g_in, N, p.shared.inter);
    cache_load(a.u, a.u_in, N, p.shared.inter);
    mlp_train_backward(dxn, g.shared, dy, a.xn, a.g, a.u, p.shared, N, D, s, ctx.precision);
  }
  // Routed experts, ascending; each token's input gradient gathers its experts in that order.
  float* dxe = s.y;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = a.offsets[e + 1] - a.offsets[e], r0 = a.offsets[e];
    if (n == 0) continue;
    parallel_for(n, [&](int64_t i) {
      const int64_t asg = a.order[r0 + i];
      const float* g_t = dy + (asg / K) * D;
      const float* ye = a.ey + (r0 + i) * D;
      const float w = a.weights[asg];
      double dot = 0.0;
      for (int64_t d = 0; d < D; ++d) {
        dot += double(g_t[d]) * double(ye[d]);
        s.dye[i * D + d] = w * g_t[d];
      }
      s.dw[asg] = float(dot);
      std::memcpy(s.xe + i * D, a.xn + (asg / K) * D, size_t(D) * sizeof(float));
    });
    std::fill(dxe, dxe + n * D, 0.0f);
    mlp_train_backward(dxe, g.experts[size_t(e)], s.dye, s.xe, a.eg + r0 * Ie, a.eu + r0 * Ie, p.experts[size_t(e)], n,
                       D, s, ctx.precision);
    for (int64_t i = 0; i < n; ++i) {
      float* dst = dxn + (a.order[r0 + i] / K) * D;
      const float* src = dxe + i * D;
      for (int64_t d = 0; d < D; ++d) dst[d] += src[d];
    }
  }
  // Router: gate weights and balance loss into ds, then through sigmoid/softmax into the logits.
  std::fill(s.ds, s.ds + N * E, 0.0f);
  parallel_for(N, [&](int64_t t) {
    gate_weights_backward(s.ds + t * E, s.dw + t * K, a.s + t * E, a.experts + t * K, rc);
  });
  if (ctx.balance_alpha != 0.0) {
    const float dloss = float(ctx.balance_alpha / double(ctx.B));
    for (int64_t b = 0; b < ctx.B; ++b)
      balance_loss_backward(s.ds + b * ctx.T * E, dloss, a.f + b * E, a.s + b * ctx.T * E, ctx.T, E);
  }
  std::fill(s.dlogit_r, s.dlogit_r + N * E, 0.0f);
  parallel_for(N, [&](int64_t t) {
    if (rc.score_func == ScoreFunc::Sigmoid) {
      kernels::sigmoid_backward(s.dlogit_r + t * E, s.ds + t * E, a.s + t * E, E);
    } else {
      kernels::softmax_row_backward(s.dlogit_r + t * E, s.ds + t * E, a.s + t * E, E);
    }
  });
  linear_backward(dxn, g.gate, s.dlogit_r, a.xn, p.gate, N, D, E);
}

}  // namespace dsv3
