// One decoder layer for training: pre-norm residual blocks (spec §2), forward and backward.
#include <algorithm>

#include "core/parallel_for.h"
#include "kernels/rmsnorm.h"
#include "train/layer_train.h"

namespace dsv3 {
namespace {

void add(float* out, const float* a, const float* b, int64_t n) {
  parallel_chunks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = a[i] + b[i];
  });
}

}  // namespace

double layer_train_forward(float* x_out, LayerActs& a, const LayerParams& p, std::span<const float> bias,
                           int64_t* counts, const LayerContext& ctx) {
  const int64_t N = ctx.B * ctx.T, D = ctx.cfg->dim;
  const float eps = float(ctx.cfg->rms_norm_eps);
  float* y = ctx.scratch->y;
  kernels::rmsnorm_forward(a.attn.xn, a.attn.rstd, a.x_in, p.attn_norm, N, D, eps);
  mla_train_forward(y, a.attn, p.attn, ctx);
  add(a.x_mid, a.x_in, y, N * D);
  kernels::rmsnorm_forward(a.ffn.xn, a.ffn.rstd, a.x_mid, p.ffn_norm, N, D, eps);
  double balance = 0.0;
  if (p.is_moe) {
    balance = moe_train_forward(y, a.ffn, p, bias, counts, ctx);
  } else {
    mlp_train_forward(y, a.ffn.g, a.ffn.u, ctx.scratch->act, a.ffn.xn, a.ffn.xn_in, p.mlp, N, D, ctx.precision);
  }
  add(x_out, a.x_mid, y, N * D);
  return balance;
}

void layer_train_backward(float* dres, const LayerParams& g, LayerActs& a, const LayerParams& p,
                          const LayerContext& ctx) {
  const int64_t N = ctx.B * ctx.T, D = ctx.cfg->dim;
  const float eps = float(ctx.cfg->rms_norm_eps);
  float* dxn = ctx.scratch->dxn;
  // x_out = x_mid + FFN(ffn_norm(x_mid))
  if (ctx.recompute) kernels::rmsnorm_forward(a.ffn.xn, nullptr, a.x_mid, p.ffn_norm, N, D, eps);
  std::fill(dxn, dxn + N * D, 0.0f);
  if (p.is_moe) {
    moe_train_backward(dxn, g, dres, a.ffn, p, ctx);
  } else {
    mlp_train_backward(dxn, g.mlp, dres, a.ffn.xn_in, a.ffn.g, a.ffn.u, p.mlp, N, D, *ctx.scratch, ctx.precision);
  }
  kernels::rmsnorm_backward(dres, g.ffn_norm, dxn, a.x_mid, p.ffn_norm, a.ffn.rstd, N, D);
  // x_mid = x_in + MLA(attn_norm(x_in))
  if (ctx.recompute) {
    kernels::rmsnorm_forward(a.attn.xn, nullptr, a.x_in, p.attn_norm, N, D, eps);
    mla_recompute(a.attn, p.attn, ctx);
  }
  std::fill(dxn, dxn + N * D, 0.0f);
  mla_train_backward(dxn, g.attn, dres, a.attn, p.attn, ctx);
  kernels::rmsnorm_backward(dres, g.attn_norm, dxn, a.x_in, p.attn_norm, a.attn.rstd, N, D);
}

}  // namespace dsv3
