// MLA forward and backward for training (spec §2.3, naive path): per-head keys and values are
// materialized from the latent c_kv, attention is causal over each full sequence (the
// flash-style core of attention_train.h, which keeps a log-sum-exp per row, not probabilities).
#include <algorithm>
#include <cstring>

#include "core/parallel_for.h"
#include "kernels/attention_train.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "train/layer_train.h"
#include "train/linear.h"

namespace dsv3 {

using kernels::HeadsView;

namespace {

struct MlaDims {
  int64_t N, D, H, dn, dr, dv, dqk, rq, rkv, kvw;  // kvw = d_n + d_v
  float eps;
  explicit MlaDims(const LayerContext& ctx) {
    const ModelConfig& c = *ctx.cfg;
    N = ctx.B * ctx.T;
    D = c.dim;
    H = c.n_heads;
    dn = c.qk_nope_head_dim;
    dr = c.qk_rope_head_dim;
    dv = c.v_head_dim;
    dqk = dn + dr;
    rq = c.q_lora_rank;
    rkv = c.kv_lora_rank;
    kvw = dn + dv;
    eps = float(c.rms_norm_eps);
  }
};

// cqn = q_norm(cq); ckv = kv_norm(c_kv); kvb = ckv·W_kvbᵀ; k = [k_nope ; RoPE(k_pe)] per head.
void normalize_and_up_project(MlaActs& a, const AttnParams& p, const MlaDims& d, const LayerContext& ctx) {
  if (d.rq > 0) kernels::rmsnorm_forward(a.cqn, a.rstd_q, a.cq, p.q_norm, d.N, d.rq, d.eps);
  kernels::rmsnorm_forward(a.ckv, d.rkv, a.rstd_kv, a.kv, d.rkv + d.dr, p.kv_norm, d.N, d.rkv, d.eps);
  linear_forward(a.kvb, a.ckv_in, a.ckv, p.wkv_b, d.N, d.rkv, d.H * d.kvw, ctx.precision);
  parallel_for(d.N, [&](int64_t t) {
    const float* pe = a.kv + t * (d.rkv + d.dr) + d.rkv;
    for (int64_t h = 0; h < d.H; ++h) {
      float* kt = a.k + (t * d.H + h) * d.dqk;
      std::memcpy(kt, a.kvb + (t * d.H + h) * d.kvw, size_t(d.dn) * sizeof(float));
      std::memcpy(kt + d.dn, pe, size_t(d.dr) * sizeof(float));
    }
  });
  kernels::rope_forward(a.k + d.dn, d.N, d.H, d.H * d.dqk, d.dqk, d.dr, ctx.cos, ctx.sin);
}

// a.o (N, H, d_v) and a.lse (B, H, T) from a.q, a.k and the values in a.kvb, sequence by sequence.
void attention_core(const MlaActs& a, const MlaDims& d, const LayerContext& ctx) {
  const int64_t T = ctx.T;
  for (int64_t b = 0; b < ctx.B; ++b) {
    const int64_t r0 = b * T;
    HeadsView<float> o{a.o + r0 * d.H * d.dv, d.H * d.dv, d.dv};
    HeadsView<const float> q{a.q + r0 * d.H * d.dqk, d.H * d.dqk, d.dqk};
    HeadsView<const float> k{a.k + r0 * d.H * d.dqk, d.H * d.dqk, d.dqk};
    HeadsView<const float> v{a.kvb + r0 * d.H * d.kvw + d.dn, d.H * d.kvw, d.kvw};
    kernels::attention_causal_forward(o, a.lse + b * d.H * T, q, k, v, T, d.H, d.dqk, d.dv, ctx.softmax_scale);
  }
}

}  // namespace

void mla_train_forward(float* out, MlaActs& a, const AttnParams& p, const LayerContext& ctx) {
  const MlaDims d(ctx);
  // Queries (N, H, d_qk): q = q_norm(xn·W_qaᵀ)·W_qbᵀ, or xn·W_qᵀ; RoPE on each head's rope slice.
  if (d.rq > 0) {
    linear_forward(a.cq, a.xn_in, a.xn, p.wq_a, d.N, d.D, d.rq, ctx.precision);
    kernels::rmsnorm_forward(a.cqn, a.rstd_q, a.cq, p.q_norm, d.N, d.rq, d.eps);
    linear_forward(a.q, a.cqn_in, a.cqn, p.wq_b, d.N, d.rq, d.H * d.dqk, ctx.precision);
  } else {
    linear_forward(a.q, a.xn_in, a.xn, p.wq, d.N, d.D, d.H * d.dqk, ctx.precision);
  }
  kernels::rope_forward(a.q + d.dn, d.N, d.H, d.H * d.dqk, d.dqk, d.dr, ctx.cos, ctx.sin);
  // Compressed KV (N, r_kv + d_r), then keys and values per head.
  linear_forward(a.kv, a.xn_in, a.xn, p.wkv_a, d.N, d.D, d.rkv + d.dr, ctx.precision);
  normalize_and_up_project(a, p, d, ctx);
  attention_core(a, d, ctx);
  linear_forward(out, a.o_in, a.o, p.wo, d.N, d.H * d.dv, d.D, ctx.precision);
}

void mla_recompute(MlaActs& a, const AttnParams& p, const LayerContext& ctx) {
  normalize_and_up_project(a, p, MlaDims(ctx), ctx);
}

void mla_train_backward(float* dxn, const AttnParams& g, const float* dout, const MlaActs& a, const AttnParams& p,
                        const LayerContext& ctx) {
  const MlaDims d(ctx);
  const int64_t T = ctx.T;
  StepScratch& s = *ctx.scratch;
  // out = o·W_oᵀ
  float* d_o = s.dout;
  std::fill(d_o, d_o + d.N * d.H * d.dv, 0.0f);
  linear_backward(d_o, g.wo, dout, a.o_in, p.wo, d.N, d.H * d.dv, d.D, ctx.precision);
  // The attention backward needs O (D = rowsum(dO ∘ O)). With a low-precision cache, a.o is one
  // buffer shared by all layers, so this layer's O is computed again, bit for bit as forward did
  // (same inputs, same kernel; the lse it rewrites is identical), instead of keeping an f32 copy
  // beside the cached o_proj input.
  if (a.o_in.format != CacheFormat::kF32) attention_core(a, d, ctx);
  // Attention core: dq, dk, and dv straight into the v slots of dkvb.
  std::fill(s.dq, s.dq + d.N * d.H * d.dqk, 0.0f);
  std::fill(s.dk, s.dk + d.N * d.H * d.dqk, 0.0f);
  std::fill(s.dkvb, s.dkvb + d.N * d.H * d.kvw, 0.0f);
  for (int64_t b = 0; b < ctx.B; ++b) {
    const int64_t r0 = b * T;
    HeadsView<float> dq{s.dq + r0 * d.H * d.dqk, d.H * d.dqk, d.dqk};
    HeadsView<float> dk{s.dk + r0 * d.H * d.dqk, d.H * d.dqk, d.dqk};
    HeadsView<float> dvv{s.dkvb + r0 * d.H * d.kvw + d.dn, d.H * d.kvw, d.kvw};
    HeadsView<const float> go{d_o + r0 * d.H * d.dv, d.H * d.dv, d.dv};
    HeadsView<const float> q{a.q + r0 * d.H * d.dqk, d.H * d.dqk, d.dqk};
    HeadsView<const float> k{a.k + r0 * d.H * d.dqk, d.H * d.dqk, d.dqk};
    HeadsView<const float> v{a.kvb + r0 * d.H * d.kvw + d.dn, d.H * d.kvw, d.kvw};
    HeadsView<const float> o{a.o + r0 * d.H * d.dv, d.H * d.dv, d.dv};
    kernels::attention_causal_backward(dq, dk, dvv, go, o, a.lse + b * d.H * T, q, k, v, T, d.H, d.dqk, d.dv,
                                       ctx.softmax_scale);
  }
  // k = [k_nope ; RoPE(k_pe)]: k_nope goes to dkvb, the rope part of every head sums into dk_pe.
  kernels::rope_backward(s.dk + d.dn, d.N, d.H, d.H * d.dqk, d.dqk, d.dr, ctx.cos, ctx.sin);
  const int64_t kvrow = d.rkv + d.dr;
  std::fill(s.dkv, s.dkv + d.N * kvrow, 0.0f);
  parallel_for(d.N, [&](int64_t t) {
    float* dpe = s.dkv + t * kvrow + d.rkv;
    for (int64_t h = 0; h < d.H; ++h) {
      const float* dk = s.dk + (t * d.H + h) * d.dqk;
      float* dkn = s.dkvb + (t * d.H + h) * d.kvw;
      for (int64_t j = 0; j < d.dn; ++j) dkn[j] += dk[j];
      for (int64_t j = 0; j < d.dr; ++j) dpe[j] += dk[d.dn + j];
    }
  });
  // kvb = ckv·W_kvbᵀ, ckv = kv_norm(kv[:, :r_kv]), kv = xn·W_kvaᵀ.
  std::fill(s.dckv, s.dckv + d.N * d.rkv, 0.0f);
  linear_backward(s.dckv, g.wkv_b, s.dkvb, a.ckv_in, p.wkv_b, d.N, d.rkv, d.H * d.kvw, ctx.precision);
  kernels::rmsnorm_backward(s.dkv, kvrow, g.kv_norm, s.dckv, d.rkv, a.kv, kvrow, p.kv_norm, a.rstd_kv, d.N, d.rkv);
  linear_backward(dxn, g.wkv_a, s.dkv, a.xn_in, p.wkv_a, d.N, d.D, kvrow, ctx.precision);
  // Queries.
  kernels::rope_backward(s.dq + d.dn, d.N, d.H, d.H * d.dqk, d.dqk, d.dr, ctx.cos, ctx.sin);
  if (d.rq > 0) {
    std::fill(s.dcqn, s.dcqn + d.N * d.rq, 0.0f);
    linear_backward(s.dcqn, g.wq_b, s.dq, a.cqn_in, p.wq_b, d.N, d.rq, d.H * d.dqk, ctx.precision);
    std::fill(s.dcq, s.dcq + d.N * d.rq, 0.0f);
    kernels::rmsnorm_backward(s.dcq, g.q_norm, s.dcqn, a.cq, p.q_norm, a.rstd_q, d.N, d.rq);
    linear_backward(dxn, g.wq_a, s.dcq, a.xn_in, p.wq_a, d.N, d.D, d.rq, ctx.precision);
  } else {
    linear_backward(dxn, g.wq, s.dq, a.xn_in, p.wq, d.N, d.D, d.H * d.dqk, ctx.precision);
  }
}

}  // namespace dsv3
