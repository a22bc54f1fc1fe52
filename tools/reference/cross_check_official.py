"""Runs DeepSeek's own inference/model.py on the golden fixtures and compares with logits.npy.

    /usr/bin/python3 tools/reference/cross_check_official.py --official PATH/TO/inference/model.py

model.py is not part of this repository; pass a local copy of deepseek-ai/DeepSeek-V3's file.
It runs on CPU in float32 with these shims, each of which selects the semantics the reference
documents in README.md (the official code is otherwise untouched):
  * a stand-in `kernel` module (the real one needs Triton; FP8 weights are given to the model
    already dequantised by the reference loader, so only weight_dequant's name is needed);
  * `F.rms_norm` for torch < 2.4 (same formula, input dtype);
  * max_seq_len > original_seq_len so YaRN and its mscale are active (HF semantics, D2), and
    ModelArgs.mscale = rope_scaling.mscale_all_dim (D3);
  * the routing bias is attached to every Gate when topk_method == noaux_tc (the official code
    creates it only for dim == 7168, D7);
  * the model is cast to float32 after construction.
The official forward returns the last position's logits only, so the comparison decodes token
by token through its KV cache (both attn_impl values) and also checks a full-sequence call's row.
"""

import argparse
import importlib.util
import json
import os
import re
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402
from reference_model import dequantized_tensors  # noqa: E402

GOLDEN = os.path.join(HERE, "..", "..", "tests", "golden", "models")

# convert.py's renaming of HF names to the official module tree (spec §5.2).
RENAMES = [("self_attn", "attn"), ("mlp", "ffn"), ("e_score_correction_bias", "bias"),
           ("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm"),
           ("q_a_proj", "wq_a"), ("q_a_layernorm", "q_norm"), ("q_b_proj", "wq_b"),
           ("q_proj", "wq"), ("kv_a_proj_with_mqa", "wkv_a"), ("kv_a_layernorm", "kv_norm"),
           ("kv_b_proj", "wkv_b"), ("o_proj", "wo"), ("gate_proj", "w1"),
           ("down_proj", "w2"), ("up_proj", "w3")]


def official_name(n):
    n = n.replace("model.embed_tokens", "embed").replace("model.norm", "norm")
    n = re.sub(r"^model\.", "", n.replace("lm_head", "head"))
    for a, b in RENAMES:
        n = n.replace(a, b)
    return n


def import_official(path):
    kernel = types.ModuleType("kernel")
    kernel.act_quant = kernel.fp8_gemm = None
    kernel.weight_dequant = lambda w, s, block_size=128: w
    sys.modules["kernel"] = kernel
    if not hasattr(F, "rms_norm"):
        F.rms_norm = lambda x, shape, w, eps: w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    spec = importlib.util.spec_from_file_location("official_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(M, c, state):
    rs = c["rope_scaling"]
    L0 = int(rs["original_max_position_embeddings"])
    a = M.ModelArgs(
        max_batch_size=1, max_seq_len=max(2 * L0, 64), vocab_size=c["vocab_size"],
        dim=c["hidden_size"], inter_dim=c["intermediate_size"],
        moe_inter_dim=c["moe_intermediate_size"], n_layers=c["num_hidden_layers"],
        n_dense_layers=c["first_k_dense_replace"], n_heads=c["num_attention_heads"],
        n_routed_experts=c["n_routed_experts"], n_shared_experts=c["n_shared_experts"],
        n_activated_experts=c["num_experts_per_tok"], n_expert_groups=c["n_group"],
        n_limited_groups=c["topk_group"], score_func=c["scoring_func"],
        route_scale=c["routed_scaling_factor"], q_lora_rank=c["q_lora_rank"] or 0,
        kv_lora_rank=c["kv_lora_rank"], qk_nope_head_dim=c["qk_nope_head_dim"],
        qk_rope_head_dim=c["qk_rope_head_dim"], v_head_dim=c["v_head_dim"],
        original_seq_len=L0, rope_theta=c["rope_theta"], rope_factor=rs["factor"],
        beta_fast=rs["beta_fast"], beta_slow=rs["beta_slow"], mscale=rs["mscale_all_dim"])
    torch.set_default_dtype(torch.float32)
    m = M.Transformer(a).float()
    if c.get("topk_method") == "noaux_tc":
        for layer in m.layers:
            if hasattr(layer.ffn, "gate"):
                layer.ffn.gate.bias = torch.nn.Parameter(torch.empty(a.n_routed_experts))
    missing, unexpected = m.load_state_dict(state, strict=False)
    bad = [k for k in missing if not re.search(r"cache|freqs", k)]
    if bad or unexpected:
        raise SystemExit(f"state mismatch: missing {bad[:5]}, unexpected {unexpected[:5]}")
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="path of DeepSeek-V3 inference/model.py")
    ap.add_argument("--fixtures", nargs="*", default=["v3_tiny", "v3_fp8", "v2_lite"])
    args = ap.parse_args()
    M = import_official(args.official)
    ok = True
    for name in args.fixtures:
        d = os.path.join(GOLDEN, name)
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        with open(os.path.join(d, "tokens.json")) as f:
            toks = json.load(f)["tokens"]
        L = c["num_hidden_layers"]
        state = {official_name(k): torch.tensor(v)
                 for k, v in dequantized_tensors(st.load_checkpoint(d)).items()
                 if not k.startswith("model.layers.") or int(k.split(".")[2]) < L}
        gold = np.load(os.path.join(d, "logits.npy")).astype(np.float64)
        std = gold.std()
        for impl in ("absorb", "naive"):
            M.attn_impl = impl
            m = build(M, c, state)
            inc = np.stack([m(torch.tensor([[t]]), i)[0].float().numpy() for i, t in enumerate(toks)])
            last = build(M, c, state)(torch.tensor([toks]), 0)[0].float().numpy()
            err = np.abs(inc - gold).max() / std
            err_last = np.abs(last - gold[-1]).max() / std
            same = int((inc.argmax(-1) == gold.argmax(-1)).sum())
            good = err <= 1e-4 and err_last <= 1e-4 and same == len(toks)
            ok &= good
            print(f"{name} official attn_impl={impl}: decode max|err|/std {err:.2e}, argmax "
                  f"{same}/{len(toks)}, full-sequence last row {err_last:.2e} {'ok' if good else 'FAIL'}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
