"""Independent float32/float64 CPU re-implementation of the DeepSeek-V3 forward (and V2 variants).

Follows DeepSeek's official inference/model.py (classes MLA, Gate, MoE, Block, Transformer) with
the choices the dsv3 engine must match (spec deepseek-v3-model.md §9; README.md lists each):

* YaRN whenever config.rope_scaling is present (HF semantics, D2): inv_freq from factor,
  original_max_position_embeddings, beta_fast, beta_slow exactly as HF yarn_* functions / official
  precompute_freqs_cis (floor/ceil correction range, clamp, +0.001 when low == high); softmax
  scale = qk_head_dim^-0.5 * yarn_get_mscale(factor, mscale_all_dim)^2 (D3); cos/sin multiplied by
  yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, mscale_all_dim) (1.0 for every
  released config and for every fixture here). Angles p * inv_freq are formed in float64.
* RoPE on interleaved pairs (2i, 2i+1) as the official complex multiply; output interleaved (D1).
* Full [S, T] causal mask: query at absolute position P+s sees keys t <= P+s (D5).
* One precision everywhere (float32 by default, float64 on request): router logits, sigmoid /
  softmax, RMSNorm (mean of squares, scaling and weight multiply), attention softmax, expert
  accumulation (D4, D6, D8, D12).
* Router keyed on topk_method (D7): noaux_tc = s + e_score_correction_bias for selection, group
  score = sum of the top-2 biased scores; group_limited_greedy = group max of the plain scores;
  greedy = plain top-k, groups ignored. Experts of unselected groups are masked with -inf (D9).
  Ties go to the lower expert / group id (stable sort).
* Gate weights = unbiased scores of the chosen experts; divided by their sum iff norm_topk_prob
  (D11, no epsilon); then always multiplied by routed_scaling_factor.
* q_lora_rank null/0 -> single q_proj; first_k_dense_replace / moe_layer_freq decide dense vs MoE;
  shared experts of width moe_intermediate_size * n_shared_experts.
* FP8 checkpoints: W = e4m3(q) * weight_scale_inv[r // 128, c // 128] in float32 (partial edge
  blocks), i.e. the official weight_dequant kernel without its final cast to BF16; activations are
  never quantised.
* Attention "naive" (per-head K/V, the HF path) or "absorb" (latent cache, official default).
* MTP (D10): z = eh_proj([enorm(Emb(t_{i+1})) ; hnorm(h_i)]), h_i = main output after model.norm,
  then one full decoder layer (own cache, positions 0..), shared_head.norm, shared_head.head;
  the MTP layer's own embed_tokens / shared_head.head tensors are used when present.

Shapes: a forward handles one sequence; x is (S, dim). Parameters are kept under their HF names.
"""

import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

import st

BLOCK = 128


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

@dataclass
class Config:
    model_type: str
    vocab_size: int
    dim: int
    inter_dim: int
    moe_inter_dim: int
    n_layers: int
    n_mtp: int
    n_dense_layers: int
    moe_layer_freq: int
    n_heads: int
    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    n_routed_experts: int
    n_shared_experts: int
    n_activated_experts: int
    n_group: int
    topk_group: int
    topk_method: str
    score_func: str
    norm_topk_prob: bool
    route_scale: float
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: Optional[dict]
    tie_word_embeddings: bool
    fp8: bool
    raw: dict = field(repr=False, default_factory=dict)

    @property
    def qk_head_dim(self):
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def is_moe(self, layer):
        return (self.n_routed_experts > 0 and layer >= self.n_dense_layers
                and layer % self.moe_layer_freq == 0)

    @staticmethod
    def from_hf(c):
        scaling = c.get("rope_scaling") or c.get("rope_parameters")
        if scaling is not None:
            kind = scaling.get("type", scaling.get("rope_type"))
            if kind in (None, "default"):
                scaling = None
            elif kind != "yarn":
                raise ValueError(f"unsupported rope_scaling type {kind}")
        q = c.get("quantization_config")
        return Config(
            model_type=c.get("model_type", "deepseek_v3"),
            vocab_size=int(c["vocab_size"]), dim=int(c["hidden_size"]),
            inter_dim=int(c["intermediate_size"]),
            moe_inter_dim=int(c.get("moe_intermediate_size") or 0),
            n_layers=int(c["num_hidden_layers"]),
            n_mtp=int(c.get("num_nextn_predict_layers") or 0),
            n_dense_layers=int(c.get("first_k_dense_replace") or 0),
            moe_layer_freq=int(c.get("moe_layer_freq") or 1),
            n_heads=int(c["num_attention_heads"]),
            q_lora_rank=int(c.get("q_lora_rank") or 0),
            kv_lora_rank=int(c["kv_lora_rank"]),
            qk_nope_head_dim=int(c["qk_nope_head_dim"]),
            qk_rope_head_dim=int(c["qk_rope_head_dim"]),
            v_head_dim=int(c["v_head_dim"]),
            n_routed_experts=int(c.get("n_routed_experts") or 0),
            n_shared_experts=int(c.get("n_shared_experts") or 0),
            n_activated_experts=int(c.get("num_experts_per_tok") or 0),
            n_group=int(c.get("n_group") or 1),
            topk_group=int(c.get("topk_group") or 1),
            topk_method=c.get("topk_method", "greedy"),
            score_func=c.get("scoring_func", "softmax"),
            norm_topk_prob=bool(c.get("norm_topk_prob", False)),
            route_scale=float(c.get("routed_scaling_factor", 1.0)),
            rms_norm_eps=float(c.get("rms_norm_eps", 1e-6)),
            rope_theta=float(c.get("rope_theta", 10000.0)),
            rope_scaling=scaling,
            tie_word_embeddings=bool(c.get("tie_word_embeddings", False)),
            fp8=bool(q and q.get("quant_method") == "fp8"),
            raw=c,
        )


# ---------------------------------------------------------------------------------------------
# YaRN (HF modeling_deepseek yarn_* functions == official precompute_freqs_cis when it applies)
# ---------------------------------------------------------------------------------------------

def yarn_get_mscale(scale=1.0, mscale=1.0):
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def _correction_dim(num_rotations, dim, base, max_pos):
    return dim * math.log(max_pos / (num_rotations * 2 * math.pi)) / (2 * math.log(base))


def yarn_correction_range(beta_fast, beta_slow, dim, base, max_pos):
    low = math.floor(_correction_dim(beta_fast, dim, base, max_pos))
    high = math.ceil(_correction_dim(beta_slow, dim, base, max_pos))
    return max(low, 0), min(high, dim - 1)


def inv_freq(cfg):
    """float64 [d_r/2] rotary frequencies (YaRN-corrected when rope_scaling is present)."""
    dim, base = cfg.qk_rope_head_dim, cfg.rope_theta
    theta = 1.0 / base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    rs = cfg.rope_scaling
    if rs is None:
        return theta
    factor = float(rs["factor"])
    low, high = yarn_correction_range(float(rs.get("beta_fast", 32)), float(rs.get("beta_slow", 1)),
                                      dim, base, float(rs["original_max_position_embeddings"]))
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    return theta / factor * ramp + theta * (1.0 - ramp)


def softmax_scale(cfg):
    scale = cfg.qk_head_dim ** -0.5
    rs = cfg.rope_scaling
    if rs is not None:
        m_all = float(rs.get("mscale_all_dim", 0) or 0)
        if m_all:
            m = yarn_get_mscale(float(rs["factor"]), m_all)
            scale = scale * m * m
    return scale


def rope_attention_factor(cfg):
    """HF multiplies cos and sin by m(factor, mscale) / m(factor, mscale_all_dim)."""
    rs = cfg.rope_scaling
    if rs is None:
        return 1.0
    f = float(rs["factor"])
    return yarn_get_mscale(f, float(rs.get("mscale", 1) or 0)) / \
        yarn_get_mscale(f, float(rs.get("mscale_all_dim", 0) or 0))


def rope_cos_sin(cfg, positions, dtype):
    """cos, sin of shape (S, d_r/2) for absolute integer positions."""
    ang = np.outer(np.asarray(positions, dtype=np.float64), inv_freq(cfg))
    a = rope_attention_factor(cfg)
    return (torch.tensor(np.cos(ang) * a, dtype=dtype), torch.tensor(np.sin(ang) * a, dtype=dtype))


def apply_rope(x, cos, sin):
    """Official apply_rotary_emb: pairs (x[2i], x[2i+1]) times e^{i phi_i}. x (S, ..., d_r)."""
    xs = x.reshape(*x.shape[:-1], -1, 2)
    x0, x1 = xs[..., 0], xs[..., 1]
    while cos.dim() < x0.dim():
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

def dequantized_tensors(raw):
    """HF name -> float32 numpy for every value tensor; FP8 weights dequantised, scales dropped."""
    out = {}
    for name, (dtype, arr) in raw.items():
        if name.endswith(".weight_scale_inv"):
            continue
        if dtype == "F8_E4M3":
            s_dtype, scale = raw[name + "_scale_inv"]
            out[name] = st.dequantize_fp8_blocks(arr, scale.astype(np.float32), BLOCK)
        else:
            out[name] = st.to_f32(dtype, arr)
    return out


class Reference:
    """The model: cfg plus a dict of parameters (HF names) in one torch dtype."""

    def __init__(self, cfg, params, dtype=torch.float32):
        self.cfg = cfg
        self.dtype = dtype
        self.p = {k: torch.tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v.to(dtype)
                  for k, v in params.items()}
        self.sigma = softmax_scale(cfg)
        self.mask_fill = float("-inf")  # value for experts of unselected groups (spec D9)

    @staticmethod
    def load(model_dir, dtype=torch.float32):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = Config.from_hf(json.load(f))
        return Reference(cfg, dequantized_tensors(st.load_checkpoint(model_dir)), dtype)

    def main_param_names(self):
        """Trainable parameters of the main model (no MTP layers, no routing bias)."""
        L = self.cfg.n_layers
        out = []
        for n in self.p:
            if n.endswith("e_score_correction_bias"):
                continue
            if n.startswith("model.layers.") and int(n.split(".")[2]) >= L:
                continue
            out.append(n)
        return out

    # --- primitives ---------------------------------------------------------------------------

    def rmsnorm(self, x, name):
        w = self.p[name]
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.rms_norm_eps))

    def linear(self, x, name):
        return x @ self.p[name].t()

    def mlp(self, x, prefix):
        return self.linear(torch.nn.functional.silu(self.linear(x, prefix + "gate_proj.weight"))
                           * self.linear(x, prefix + "up_proj.weight"), prefix + "down_proj.weight")

    # --- attention ----------------------------------------------------------------------------

    def attention(self, x, pre, start_pos, cache, impl):
        """MLA over x (S, dim) at positions start_pos..; cache: dict extended in place or None."""
        c = self.cfg
        S, H = x.shape[0], c.n_heads
        dn, dr, dv, r = c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.kv_lora_rank
        a = pre + "self_attn."
        if c.q_lora_rank:
            q = self.linear(self.rmsnorm(self.linear(x, a + "q_a_proj.weight"),
                                         a + "q_a_layernorm.weight"), a + "q_b_proj.weight")
        else:
            q = self.linear(x, a + "q_proj.weight")
        q = q.view(S, H, dn + dr)                                   # (S, H, qk_head_dim)
        q_nope, q_pe = q[..., :dn], q[..., dn:]
        cos, sin = rope_cos_sin(c, range(start_pos, start_pos + S), self.dtype)
        q_pe = apply_rope(q_pe, cos, sin)
        kv = self.linear(x, a + "kv_a_proj_with_mqa.weight")         # (S, r + d_r)
        c_kv = self.rmsnorm(kv[:, :r], a + "kv_a_layernorm.weight")   # (S, r)
        k_pe = apply_rope(kv[:, r:], cos, sin)                       # (S, d_r)
        wkv_b = self.p[a + "kv_b_proj.weight"].view(H, dn + dv, r)
        T = start_pos + S
        if impl == "naive":
            kvb = (c_kv @ wkv_b.reshape(H * (dn + dv), r).t()).view(S, H, dn + dv)
            k = torch.cat([kvb[..., :dn], k_pe.unsqueeze(1).expand(S, H, dr)], dim=-1)
            v = kvb[..., dn:]
            k, v = _append(cache, "k", k), _append(cache, "v", v)    # (T, H, *)
            scores = torch.einsum("shd,thd->sht", torch.cat([q_nope, q_pe], -1), k) * self.sigma
        elif impl == "absorb":
            q_abs = torch.einsum("shd,hdc->shc", q_nope, wkv_b[:, :dn])   # (S, H, r)
            lat, pe = _append(cache, "kv", c_kv), _append(cache, "pe", k_pe)  # (T, r), (T, d_r)
            scores = (torch.einsum("shc,tc->sht", q_abs, lat)
                      + torch.einsum("shr,tr->sht", q_pe, pe)) * self.sigma
        else:
            raise ValueError(impl)
        qpos = torch.arange(start_pos, T).view(S, 1, 1)
        kpos = torch.arange(T).view(1, 1, T)
        scores = scores.masked_fill(kpos > qpos, float("-inf"))
        p = torch.softmax(scores, dim=-1)
        if impl == "naive":
            o = torch.einsum("sht,thd->shd", p, v)
        else:
            o = torch.einsum("shc,hdc->shd", torch.einsum("sht,tc->shc", p, lat), wkv_b[:, dn:])
        return self.linear(o.reshape(S, H * dv), a + "o_proj.weight")

    # --- MoE ----------------------------------------------------------------------------------

    def gate(self, x, g):
        """Returns (weights (N, K) differentiable, idx (N, K), margins dict). g = '...mlp.gate.'."""
        c = self.cfg
        N, E, K = x.shape[0], c.n_routed_experts, c.n_activated_experts
        logits = x @ self.p[g + "weight"].t()
        if c.score_func == "sigmoid":
            scores = torch.sigmoid(logits)
        elif c.score_func == "softmax":
            scores = torch.softmax(logits, dim=-1)
        else:
            raise ValueError(c.score_func)
        choice = scores.detach().clone()
        if c.topk_method == "noaux_tc":
            choice = choice + self.p[g + "e_score_correction_bias"]
        margins = {}
        if c.topk_method in ("noaux_tc", "group_limited_greedy") and c.n_group > 1:
            grouped = choice.view(N, c.n_group, E // c.n_group)
            if c.topk_method == "noaux_tc":
                gscore = torch.sort(grouped, dim=-1, descending=True)[0][..., :2].sum(-1)
            else:
                gscore = grouped.max(dim=-1)[0]
            gs, gorder = torch.sort(gscore, dim=-1, descending=True, stable=True)
            margins["group"] = float((gs[:, c.topk_group - 1] - gs[:, c.topk_group]).min())
            keep = torch.zeros(N, c.n_group, dtype=torch.bool)
            keep.scatter_(1, gorder[:, :c.topk_group], True)
            choice = choice.masked_fill(~keep.repeat_interleave(E // c.n_group, dim=1),
                                       self.mask_fill)
        cs, order = torch.sort(choice, dim=-1, descending=True, stable=True)
        idx = order[:, :K]
        if K < E and torch.isfinite(cs[:, K]).all():
            margins["expert"] = float((cs[:, K - 1] - cs[:, K]).min())
        w = scores.gather(1, idx)
        if c.norm_topk_prob:
            w = w / w.sum(dim=-1, keepdim=True)
        return w * c.route_scale, idx, margins

    def moe(self, x, pre, diag=None):
        m = pre + "mlp."
        w, idx, margins = self.gate(x, m + "gate.")
        if diag is not None:
            diag[pre + "topk_idx"] = idx
            diag[pre + "topk_weight"] = w
            diag.setdefault("margins", []).append(margins)
        y = torch.zeros_like(x)
        for e in range(self.cfg.n_routed_experts):
            tok, slot = torch.where(idx == e)
            if tok.numel() == 0:
                continue
            out = self.mlp(x[tok], f"{m}experts.{e}.") * w[tok, slot].unsqueeze(-1)
            y = y.index_add(0, tok, out)
        if self.cfg.n_shared_experts:
            y = y + self.mlp(x, m + "shared_experts.")
        return y

    # --- blocks and model ---------------------------------------------------------------------

    def block(self, layer, x, start_pos, cache, impl, diag=None):
        pre = f"model.layers.{layer}."
        attn = self.attention(self.rmsnorm(x, pre + "input_layernorm.weight"), pre, start_pos,
                              cache, impl)
        h = x + attn
        hn = self.rmsnorm(h, pre + "post_attention_layernorm.weight")
        ffn = self.moe(hn, pre, diag) if self.cfg.is_moe(layer) else self.mlp(hn, pre + "mlp.")
        out = h + ffn
        if diag is not None:
            diag[pre + "attn_out"] = attn
            diag[pre + "h_after_attn"] = h
            diag[pre + "ffn_out"] = ffn
            diag[pre + "out"] = out
        return out

    def head_weight(self):
        return "model.embed_tokens.weight" if self.cfg.tie_word_embeddings else "lm_head.weight"

    def forward(self, tokens, start_pos=0, cache=None, impl="naive", diag=None):
        """tokens (S,) -> logits (S, vocab), h (S, dim) after model.norm. cache: list per layer."""
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        h = self.p["model.embed_tokens.weight"][tokens]
        if diag is not None:
            diag["embed"] = h
        for l in range(self.cfg.n_layers):
            h = self.block(l, h, start_pos, None if cache is None else cache[l], impl, diag)
        h = self.rmsnorm(h, "model.norm.weight")
        if diag is not None:
            diag["final_norm"] = h
        return self.linear(h, self.head_weight()), h

    def new_cache(self, n_layers=None):
        return [dict() for _ in range(self.cfg.n_layers if n_layers is None else n_layers)]

    def forward_chunks(self, tokens, chunks, impl="absorb"):
        """Prefill/decode in pieces of the given sizes through one KV cache; logits (T, vocab)."""
        cache, out, pos = self.new_cache(), [], 0
        for n in chunks:
            logits, _ = self.forward(tokens[pos:pos + n], pos, cache, impl)
            out.append(logits)
            pos += n
        assert pos == len(tokens)
        return torch.cat(out, 0)

    def mtp(self, h, next_tokens, k=0, start_pos=0, cache=None, impl="naive", diag=None):
        """MTP module k: h (S, dim) main output after model.norm at positions i, next_tokens (S,)
        = t_{i+1}. Returns logits (S, vocab) predicting t_{i+2}, and the module's hidden."""
        L = self.cfg.n_layers + k
        pre = f"model.layers.{L}."
        emb_name = pre + "embed_tokens.weight"
        emb = self.p[emb_name if emb_name in self.p else "model.embed_tokens.weight"]
        e = emb[torch.as_tensor(next_tokens, dtype=torch.long)]
        z = self.linear(torch.cat([self.rmsnorm(e, pre + "enorm.weight"),
                                   self.rmsnorm(h, pre + "hnorm.weight")], dim=-1),
                        pre + "eh_proj.weight")
        hk = self.block(L, z, start_pos, cache, impl, diag)
        head = pre + "shared_head.head.weight"
        head = head if head in self.p else self.head_weight()
        hn = self.rmsnorm(hk, pre + "shared_head.norm.weight")
        return self.linear(hn, head), hn


def _append(cache, key, value):
    if cache is None:
        return value
    cache[key] = value if key not in cache else torch.cat([cache[key], value], 0)
    return cache[key]


def next_token_loss(logits, tokens):
    """Mean cross-entropy of logits[i] against tokens[i+1], i = 0..T-2."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    return torch.nn.functional.cross_entropy(logits[:-1], tokens[1:])
