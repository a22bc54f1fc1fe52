#include "train/activations.h"

#include <fmt/format.h>

#include <algorithm>

namespace dsv3 {
namespace {

// Hands out 64-byte-aligned ranges of a slab; with a null base it only counts (planning pass).
class Carver {
 public:
  Carver(std::byte* base, std::vector<ActivationEntry>* table) : base_(base), table_(table) {}
  template <typename T>
  T* take(const std::string& name, int64_t n, bool linear_input = false) {
    off_ = (off_ + 63) & ~int64_t(63);
    T* p = base_ != nullptr ? reinterpret_cast<T*>(base_ + off_) : nullptr;
    const int64_t bytes = std::max<int64_t>(n, 0) * int64_t(sizeof(T));
    if (table_ != nullptr) table_->push_back({name, bytes, linear_input});
    off_ += bytes;
    return p;
  }
  int64_t bytes() const { return off_; }

 private:
  std::byte* base_;
  std::vector<ActivationEntry>* table_;
  int64_t off_ = 0;
};

// The table: every saved tensor and scratch buffer with its size.
void plan(Carver& c, const ModelConfig& cfg, int64_t B, int64_t T, int64_t depth, bool recompute, Precision precision,
          bool f32_inputs, bool f32_swiglu, Activations& a) {
  const int64_t D = cfg.dim, H = cfg.n_heads, dqk = cfg.qk_head_dim(), dn = cfg.qk_nope_head_dim;
  const int64_t dv = cfg.v_head_dim, dr = cfg.qk_rope_head_dim, rq = cfg.q_lora_rank, rkv = cfg.kv_lora_rank;
  const int64_t E = cfg.n_routed_experts, K = cfg.n_activated_experts, V = cfg.vocab_size;
  const int64_t I = cfg.inter_dim, Ie = cfg.moe_inter_dim, Is = cfg.moe_inter_dim * cfg.n_shared_experts;
  const int64_t N = B * T;
  auto f32 = [&](const std::string& name, int64_t n) { return c.take<float>(name, n); };
  auto i32 = [&](const std::string& name, int64_t n) { return c.take<int32_t>(name, n); };

  // Linear inputs below f32 ([L], see activations.h) unless f32_inputs.
  const Precision cache = f32_inputs ? Precision::kF32 : precision;
  const bool lp = cache != Precision::kF32;
  // [R] tensors: per layer, or one buffer of the largest layer's size shared by all layers. With
  // low-precision caches the f32 [L] tensors are shared buffers too.
  struct Shared {
    float *attn_xn = nullptr, *cqn = nullptr, *ckv = nullptr, *kvb = nullptr, *k = nullptr, *ffn_xn = nullptr;
    float* o = nullptr;
  } shared;
  if (recompute || lp) {
    const std::string pre = recompute ? "recompute." : "scratch.";
    shared.attn_xn = f32(pre + "attn.xn", N * D);
    if (rq > 0) shared.cqn = f32(pre + "attn.cqn", N * rq);
    shared.ckv = f32(pre + "attn.ckv", N * rkv);
    shared.ffn_xn = f32(pre + "ffn.xn", N * D);
  }
  if (lp) shared.o = f32("scratch.attn.o", N * H * dv);
  // The MoE SwiGLU inputs (FfnActs::eg_in): cached like the linear inputs unless f32_swiglu.
  const CacheFormat swiglu_fmt = f32_swiglu ? CacheFormat::kF32 : cache_format(cache, false);
  bool any_moe = false;
  for (int64_t l = 0; l < cfg.n_layers + cfg.n_mtp_layers; ++l) any_moe = any_moe || cfg.is_moe_layer(l);
  float *sh_eg = nullptr, *sh_eu = nullptr, *sh_g = nullptr, *sh_u = nullptr;
  if (swiglu_fmt != CacheFormat::kF32 && any_moe) {
    sh_eg = f32("scratch.moe.eg", N * K * Ie);
    sh_eu = f32("scratch.moe.eu", N * K * Ie);
    if (Is > 0) {
      sh_g = f32("scratch.moe.shared.g", N * Is);
      sh_u = f32("scratch.moe.shared.u", N * Is);
    }
  }
  // A tensor (rows, cols) cached below f32: its codes (and tile scales) in `in`.
  auto take_cache = [&](const std::string& name, LinearInput& in, CacheFormat fmt, int64_t rows, int64_t cols,
                        bool linear_input) {
    static constexpr const char* kSuffix[] = {".f32", ".bf16", ".e4m3", ".e5m6"};
    in.format = fmt;
    in.data = c.take<uint8_t>(name + kSuffix[int(fmt)], cache_data_bytes(fmt, rows, cols), linear_input);
    const int64_t scale_bytes = cache_scale_bytes(fmt, rows, cols);
    if (scale_bytes > 0) in.scales = c.take<float>(name + ".scales", scale_bytes / int64_t(sizeof(float)), linear_input);
  };
  auto swiglu_input = [&](const std::string& name, float*& x, LinearInput& in, int64_t rows, int64_t cols, float* sh) {
    if (swiglu_fmt == CacheFormat::kF32) {
      x = f32(name, rows * cols);
      in = f32_input(x);
      return;
    }
    x = sh;
    take_cache(name, in, swiglu_fmt, rows, cols, false);
  };
  if (recompute) {
    shared.kvb = f32("recompute.attn.kvb", N * H * (dn + dv));
    shared.k = f32("recompute.attn.k", N * H * dqk);
  }
  auto rec = [&](const std::string& name, int64_t n, float* sh) { return recompute ? sh : f32(name, n); };
  // An [L] tensor (rows, cols): its f32 buffer into x and what backward reads into in.
  auto input = [&](const std::string& name, float*& x, LinearInput& in, int64_t rows, int64_t cols, bool is_r,
                   float* sh, bool attn_out) {
    const CacheFormat fmt = cache_format(cache, attn_out);
    if (is_r && recompute) {
      x = sh;
      in = f32_input(x, attn_out);
    } else if (fmt == CacheFormat::kF32) {
      x = c.take<float>(name, rows * cols, true);
      in = f32_input(x, attn_out);
    } else {
      x = sh;
      in.attn_out = attn_out;
      take_cache(name, in, fmt, rows, cols, true);
    }
  };

  auto layer = [&](const std::string& pre, LayerActs& L, int64_t Tl, bool moe) {
    const int64_t n = B * Tl;
    L.rows = n;
    L.x_in = f32(pre + "x_in", n * D);
    L.x_mid = f32(pre + "x_mid", n * D);
    MlaActs& m = L.attn;
    input(pre + "attn.xn", m.xn, m.xn_in, n, D, true, shared.attn_xn, false);
    m.rstd = f32(pre + "attn.rstd", n);
    if (rq > 0) {
      m.cq = f32(pre + "attn.cq", n * rq);
      input(pre + "attn.cqn", m.cqn, m.cqn_in, n, rq, true, shared.cqn, false);
      m.rstd_q = f32(pre + "attn.rstd_q", n);
    }
    m.q = f32(pre + "attn.q", n * H * dqk);
    m.kv = f32(pre + "attn.kv", n * (rkv + dr));
    input(pre + "attn.ckv", m.ckv, m.ckv_in, n, rkv, true, shared.ckv, false);
    m.rstd_kv = f32(pre + "attn.rstd_kv", n);
    m.kvb = rec(pre + "attn.kvb", n * H * (dn + dv), shared.kvb);
    m.k = rec(pre + "attn.k", n * H * dqk, shared.k);
    m.lse = f32(pre + "attn.lse", B * H * Tl);
    input(pre + "attn.o", m.o, m.o_in, n, H * dv, false, shared.o, true);
    FfnActs& f = L.ffn;
    if (moe) {  // f32 for the router (see activations.h)
      f.xn = recompute ? shared.ffn_xn : c.take<float>(pre + "ffn.xn", n * D, true);
      f.xn_in = f32_input(f.xn);
    } else {
      input(pre + "ffn.xn", f.xn, f.xn_in, n, D, true, shared.ffn_xn, false);
    }
    f.rstd = f32(pre + "ffn.rstd", n);
    if (!moe) {
      f.g = f32(pre + "ffn.g", n * I);
      f.u = f32(pre + "ffn.u", n * I);
      return;
    }
    f.s = f32(pre + "moe.s", n * E);
    f.experts = i32(pre + "moe.experts", n * K);
    f.weights = f32(pre + "moe.weights", n * K);
    f.order = i32(pre + "moe.order", n * K);
    f.row_of = i32(pre + "moe.row_of", n * K);
    f.offsets = c.take<int64_t>(pre + "moe.offsets", E + 1);
    swiglu_input(pre + "moe.eg", f.eg, f.eg_in, n * K, Ie, sh_eg);
    swiglu_input(pre + "moe.eu", f.eu, f.eu_in, n * K, Ie, sh_eu);
    f.ey = f32(pre + "moe.ey", n * K * D);
    f.f = f32(pre + "moe.f", B * E);
    if (Is > 0) {
      swiglu_input(pre + "moe.shared.g", f.g, f.g_in, n, Is, sh_g);
      swiglu_input(pre + "moe.shared.u", f.u, f.u_in, n, Is, sh_u);
    }
  };

  a.batch = B;
  a.seq_len = T;
  a.tokens = i32("tokens", N);
  a.targets = i32("targets", N);
  a.layers.resize(size_t(cfg.n_layers));
  for (int64_t l = 0; l < cfg.n_layers; ++l)
    layer(fmt::format("layers.{}.", l), a.layers[size_t(l)], T, cfg.is_moe_layer(l));
  a.x_final = f32("x_final", N * D);
  a.h = f32("h", N * D);
  a.rstd_f = f32("rstd_f", N);
  a.logits = f32("logits", N * V);
  a.losses = f32("losses", N);
  a.lse = f32("lse", N);
  a.dh = f32("dh", N * D);
  a.mtp.resize(size_t(std::clamp<int64_t>(std::min(depth, T - 1), 0, depth)));
  for (int64_t k = 1; k <= int64_t(a.mtp.size()); ++k) {
    MtpActs& m = a.mtp[size_t(k - 1)];
    const int64_t Tk = T - k, n = B * Tk;
    const std::string pre = fmt::format("mtp.{}.", k);
    m.tokens = i32(pre + "tokens", n);
    m.targets = i32(pre + "targets", n);
    m.emb = f32(pre + "emb", n * D);
    m.rstd_e = f32(pre + "rstd_e", n);
    m.hprev = f32(pre + "hprev", n * D);
    m.rstd_h = f32(pre + "rstd_h", n);
    m.cat = f32(pre + "cat", n * 2 * D);
    layer(pre, m.layer, Tk, cfg.is_moe_layer(cfg.n_layers + k - 1));
    m.x_out = f32(pre + "x_out", n * D);
    m.h = f32(pre + "h", n * D);
    m.rstd_o = f32(pre + "rstd_o", n);
    m.logits = f32(pre + "logits", n * V);
    m.losses = f32(pre + "losses", n);
    m.lse = f32(pre + "lse", n);
    m.dh = f32(pre + "dh", n * D);
  }

  StepScratch& s = a.scratch;
  const int64_t wide = N * std::max({I, Is, Ie, int64_t(1)});
  s.y = f32("scratch.y", N * D);
  s.act = f32("scratch.act", wide);
  s.xe = f32("scratch.xe", N * D);
  s.route = f32("scratch.route", N * std::max<int64_t>(E, 1));
  s.sel = i32("scratch.sel", N * std::max<int64_t>(K, 1));
  s.dres = f32("grad.dres", N * D);
  s.dxn = f32("grad.dxn", N * D);
  s.dq = f32("grad.dq", N * H * dqk);
  s.dk = f32("grad.dk", N * H * dqk);
  s.dkvb = f32("grad.dkvb", N * H * (dn + dv));
  s.dkv = f32("grad.dkv", N * (rkv + dr));
  s.dckv = f32("grad.dckv", N * rkv);
  s.dcq = f32("grad.dcq", N * rq);
  s.dcqn = f32("grad.dcqn", N * rq);
  s.dout = f32("grad.dout", N * H * dv);
  s.dg = f32("grad.dg", wide);
  s.du = f32("grad.du", wide);
  s.da = f32("grad.da", wide);
  s.dye = f32("grad.dye", N * D);
  s.dw = f32("grad.dw", N * std::max<int64_t>(K, 1));
  s.ds = f32("grad.ds", N * std::max<int64_t>(E, 1));
  s.dlogit_r = f32("grad.dlogit_r", N * std::max<int64_t>(E, 1));
  s.dlogits = f32("grad.dlogits", N * V);
  s.dcat = f32("grad.dcat", N * 2 * D);
  s.demb = f32("grad.demb", N * D);
  s.dhprev = f32("grad.dhprev", N * D);
}

}  // namespace

ActivationArena::ActivationArena(const ModelConfig& cfg, int64_t batch, int64_t seq_len, int64_t mtp_depth,
                                 bool recompute, Precision precision, bool f32_linear_inputs, bool f32_swiglu_inputs) {
  Carver count(nullptr, nullptr);
  plan(count, cfg, batch, seq_len, mtp_depth, recompute, precision, f32_linear_inputs, f32_swiglu_inputs, acts_);
  bytes_ = count.bytes();
  slab_.reset(new std::byte[size_t(bytes_ + 64)]);
  auto base = reinterpret_cast<uintptr_t>(slab_.get());
  Carver carve(slab_.get() + ((64 - base % 64) % 64), &table_);
  plan(carve, cfg, batch, seq_len, mtp_depth, recompute, precision, f32_linear_inputs, f32_swiglu_inputs, acts_);
}

int64_t ActivationArena::linear_input_bytes() const {
  int64_t sum = 0;
  for (const ActivationEntry& e : table_)
    if (e.linear_input) sum += e.bytes;
  return sum;
}

}  // namespace dsv3
