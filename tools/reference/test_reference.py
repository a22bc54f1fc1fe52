"""Self-checks of the reference (not part of CI):

    cd tools/reference && /usr/bin/python3 -m unittest -v test_reference
"""

import json
import math
import os
import tempfile
import unittest

import numpy as np
import torch

import st
from reference_model import (Config, Reference, apply_rope, inv_freq, next_token_loss,
                             rope_cos_sin, softmax_scale, yarn_correction_range)

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "tests", "golden", "models")
FIXTURES = ["v3_tiny", "v3_fp8", "v2_lite"]

# Spec §2.4: inv_freq of the 671B config (fp64).
SPEC_671B_INV_FREQ = [
    1.000000000e+00, 7.498942093e-01, 5.623413252e-01, 4.216965034e-01, 3.162277660e-01,
    2.371373706e-01, 1.778279410e-01, 1.333521432e-01, 1.000000000e-01, 7.498942093e-02,
    5.623413252e-02, 3.900692657e-02, 2.687936011e-02, 1.837814622e-02, 1.244795587e-02,
    8.334508951e-03, 5.500000000e-03, 3.561997494e-03, 2.249365301e-03, 1.370513636e-03,
    7.905694150e-04, 4.149903985e-04, 1.778279410e-04, 3.333803580e-05, 2.500000000e-05,
    1.874735523e-05, 1.405853313e-05, 1.054241259e-05, 7.905694150e-06, 5.928434264e-06,
    4.445698525e-06, 3.333803580e-06]


def config_671b():
    return Config.from_hf({
        "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
        "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_nextn_predict_layers": 1,
        "num_attention_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
        "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8,
        "topk_group": 4, "topk_method": "noaux_tc", "scoring_func": "sigmoid",
        "norm_topk_prob": True, "routed_scaling_factor": 2.5, "first_k_dense_replace": 3,
        "rope_theta": 10000,
        "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}})


def config_v2_lite():
    c = config_671b().raw
    c = dict(c, q_lora_rank=None, num_attention_heads=16,
             rope_scaling=dict(c["rope_scaling"], mscale=0.707, mscale_all_dim=0.707))
    return Config.from_hf(c)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / b.std())


def load(name, dtype=torch.float64):
    return Reference.load(os.path.join(GOLDEN, name), dtype)


def tokens_of(name):
    with open(os.path.join(GOLDEN, name, "tokens.json")) as f:
        return json.load(f)["tokens"]


class YarnTest(unittest.TestCase):
    def test_671b_inv_freq_matches_spec_table(self):
        got = inv_freq(config_671b())
        np.testing.assert_allclose(got, SPEC_671B_INV_FREQ, rtol=2e-9)
        self.assertEqual(yarn_correction_range(32, 1, 64, 10000, 4096), (10, 23))

    def test_official_formula_equals_hf_formula(self):
        # official: freqs / factor * (1 - smooth) + freqs * smooth, smooth = 1 - ramp
        cfg = config_671b()
        theta = 1.0 / 10000 ** (np.arange(0, 64, 2) / 64)
        ramp = np.clip((np.arange(32) - 10) / (23 - 10), 0, 1)
        smooth = 1 - ramp
        np.testing.assert_allclose(theta / 40 * (1 - smooth) + theta * smooth, inv_freq(cfg),
                                   rtol=1e-15)

    def test_softmax_scales(self):
        self.assertAlmostEqual(softmax_scale(config_671b()), 0.1352337789, places=10)
        self.assertAlmostEqual(softmax_scale(config_v2_lite()), 0.114721, places=6)


class RopeLayoutTest(unittest.TestCase):
    def test_hf_deinterleave_rotate_half_equals_official_complex(self):
        cfg = config_671b()
        g = torch.Generator().manual_seed(1)
        S, d = 9, cfg.qk_rope_head_dim
        q = torch.randn(S, d, generator=g, dtype=torch.float64)
        k = torch.randn(S, d, generator=g, dtype=torch.float64)
        pos = [0, 1, 2, 3, 100, 4095, 4096, 50000, 163839]
        cos, sin = rope_cos_sin(cfg, pos, torch.float64)
        qo, ko = apply_rope(q, cos, sin), apply_rope(k, cos, sin)

        def hf(x):
            xd = torch.cat([x[:, 0::2], x[:, 1::2]], -1)          # de-interleave
            rot = torch.cat([-xd[:, d // 2:], xd[:, :d // 2]], -1)  # rotate_half
            c2, s2 = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)
            return xd * c2 + rot * s2

        qh, kh = hf(q), hf(k)
        torch.testing.assert_close(qh, torch.cat([qo[:, 0::2], qo[:, 1::2]], -1), rtol=0, atol=1e-13)
        torch.testing.assert_close(qh @ kh.t(), qo @ ko.t(), rtol=0, atol=1e-12)
        # Plain rotate_half on the raw (interleaved) layout is a different function.
        wrong = q * torch.cat([cos, cos], -1) + torch.cat([-q[:, d // 2:], q[:, :d // 2]], -1) * torch.cat([sin, sin], -1)
        self.assertGreater(float((wrong @ wrong.t() - qo @ qo.t()).abs().max()) +
                           float((wrong - qh).abs().max()), 1e-3)


class NumericsTest(unittest.TestCase):
    def test_e4m3_codes(self):
        finite = np.array([c for c in range(256) if c not in (0x7F, 0xFF)], dtype=np.uint8)
        np.testing.assert_array_equal(st.f32_to_e4m3(st.e4m3_to_f32(finite)), finite)
        pts = {448.0: 0x7E, 460.0: 0x7E, 464.0: 0x7E, 1e9: 0x7E, 2.0 ** -10: 0x00,
               1.5 * 2.0 ** -10: 0x01, 1.0: 0x38, 2.0: 0x40, -1.0: 0xB8, 0.0625 * 1.0625: 0x18}
        for v, code in pts.items():
            self.assertEqual(int(st.f32_to_e4m3(np.array([v]))[0]), code, v)
        pos = st.e4m3_to_f32(np.arange(0x7F, dtype=np.uint8)).astype(np.float64)
        mids = st.f32_to_e4m3((pos[:-1] + pos[1:]) / 2)
        self.assertTrue(np.all(mids % 2 == 0))  # ties to the even code

    def test_bf16_rne(self):
        x = np.array([1.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20], np.float32)
        np.testing.assert_array_equal(st.bf16_to_f32(st.f32_to_bf16(x)),
                                      np.array([1.0, 1.0, 1 + 2 ** -6, 1 + 2 ** -7], np.float32))

    def test_fp8_blocks_edges(self):
        g = np.random.RandomState(0)
        w = (g.randn(200, 130) * 0.1).astype(np.float32)
        q, s = st.quantize_fp8_blocks(w)
        self.assertEqual(s.shape, (2, 2))
        back = st.dequantize_fp8_blocks(q, s)
        # E4M3 relative step is 2^-3 for normals: error <= 2^-4 |w| + subnormal step 2^-10 * s.
        srep = np.repeat(np.repeat(s, 128, 0), 128, 1)[:200, :130]
        self.assertTrue(np.all(np.abs(back - w) <= 2 ** -4 * np.abs(w) + 2 ** -10 * srep + 1e-12))
        self.assertAlmostEqual(float(np.abs(back[128:, 128:]).max()), float(np.abs(w[128:, 128:]).max()), places=6)

    def test_safetensors_round_trip_and_shards(self):
        t = {"a": ("F32", np.arange(6, dtype=np.float32).reshape(2, 3)),
             "b": ("BF16", st.f32_to_bf16(np.array([1.5, -2.0], np.float32))),
             "c": ("F8_E4M3", np.array([[0x38, 0x40]], np.uint8)),
             "d": ("I32", np.array([7], np.int32))}
        with tempfile.TemporaryDirectory() as d:
            st.save_checkpoint(t, d, n_shards=2)
            self.assertTrue(os.path.exists(os.path.join(d, "model.safetensors.index.json")))
            back = st.load_checkpoint(d)
            header, base = st.read_header(os.path.join(d, "model-00001-of-00002.safetensors"))
            self.assertEqual(base % 8, 0)
        for k, (dt, a) in t.items():
            self.assertEqual(back[k][0], dt)
            np.testing.assert_array_equal(back[k][1], a)


class FixtureLayoutTest(unittest.TestCase):
    def test_fp8_fixture_inventory(self):
        header, _ = st.read_header(os.path.join(GOLDEN, "v3_fp8", "model.safetensors"))
        header.pop("__metadata__", None)
        fp8 = sorted(k for k, v in header.items() if v["dtype"] == "F8_E4M3")
        for k in header:
            in_layer = k.startswith("model.layers.")
            proj = k.endswith(("_proj.weight", "kv_a_proj_with_mqa.weight"))
            self.assertEqual(k in fp8, in_layer and proj, k)
        for k in fp8:
            r, c = header[k]["shape"]
            s = header[k + "_scale_inv"]
            self.assertEqual((s["dtype"], s["shape"]), ("F32", [-(-r // 128), -(-c // 128)]), k)
        self.assertEqual(header["model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv"]["shape"], [2, 2])

    def test_sharded_fixture_splits_a_layer(self):
        with open(os.path.join(GOLDEN, "v3_tiny", "model.safetensors.index.json")) as f:
            wm = json.load(f)["weight_map"]
        files = {}
        for k, v in wm.items():
            if k.startswith("model.layers."):
                files.setdefault(k.split(".")[2], set()).add(v)
        self.assertTrue(any(len(v) == 2 for v in files.values()))


class ModelTest(unittest.TestCase):
    def test_naive_equals_absorbed_fp64(self):
        for name in FIXTURES:
            ref, toks = load(name), tokens_of(name)
            with torch.no_grad():
                a, h = ref.forward(toks, impl="naive")
                b, _ = ref.forward(toks, impl="absorb")
                self.assertLess(rel(b, a), 1e-10, name)
                if ref.cfg.n_mtp:
                    ma, _ = ref.mtp(h[:-1], toks[1:], impl="naive")
                    mb, _ = ref.mtp(h[:-1], toks[1:], impl="absorb")
                    self.assertLess(rel(mb, ma), 1e-10, name)

    def test_incremental_and_chunked_equal_full_fp64(self):
        for name in FIXTURES:
            ref, toks = load(name), tokens_of(name)
            with torch.no_grad():
                full, _ = ref.forward(toks, impl="naive")
                for impl in ("naive", "absorb"):
                    inc = ref.forward_chunks(toks, [1] * len(toks), impl)
                    self.assertLess(rel(inc, full), 1e-10, (name, impl))
                    chunked = ref.forward_chunks(toks, [7, 5, 1, 7], impl)  # [S, T] mask with P > 0
                    self.assertLess(rel(chunked, full), 1e-10, (name, impl))

    def test_mtp_incremental_equals_full(self):
        ref, toks = load("v3_tiny"), tokens_of("v3_tiny")
        with torch.no_grad():
            _, h = ref.forward(toks)
            full, _ = ref.mtp(h[:-1], toks[1:])
            cache, rows = {}, []
            for i in range(len(toks) - 1):
                lg, _ = ref.mtp(h[i:i + 1], toks[i + 1:i + 2], start_pos=i, cache=cache, impl="absorb")
                rows.append(lg)
            self.assertLess(rel(torch.cat(rows), full), 1e-10)

    def test_goldens_reproduce(self):
        for name in FIXTURES:
            d = os.path.join(GOLDEN, name)
            ref, toks = load(name, torch.float32), tokens_of(name)
            with torch.no_grad():
                lg, h = ref.forward(toks)
                np.testing.assert_allclose(lg.numpy(), np.load(os.path.join(d, "logits.npy")),
                                           rtol=0, atol=1e-5)
                if ref.cfg.n_mtp:
                    m, _ = ref.mtp(h[:-1], toks[1:])
                    np.testing.assert_allclose(m.numpy(), np.load(os.path.join(d, "mtp_logits.npy")),
                                               rtol=0, atol=1e-5)
            with open(os.path.join(d, "loss.json")) as f:
                self.assertAlmostEqual(float(next_token_loss(lg, toks)), json.load(f)["loss"], places=5)

    def test_grads_match_finite_differences(self):
        # Central differences in fp64 through the whole model, routing held by the tiny step.
        for name in ("v3_tiny", "v2_lite", "v3_fp8"):
            ref, toks = load(name), tokens_of(name)
            grads = st.load_file(os.path.join(GOLDEN, name, "grads.safetensors"))
            self.assertEqual(sorted(grads), sorted(ref.main_param_names()))
            picks = [n for n in grads if n.endswith(("q_b_proj.weight", "q_proj.weight", "kv_b_proj.weight",
                                                     "mlp.gate.weight", "experts.1.down_proj.weight",
                                                     "kv_a_layernorm.weight", "lm_head.weight"))]
            g = np.random.RandomState(3)
            for n in picks:
                p = ref.p[n]
                flat = p.view(-1)
                gn = grads[n][1].reshape(-1)
                for i in list(np.argsort(-np.abs(gn))[:2]) + [g.randint(flat.numel())]:
                    eps, old = 1e-6, float(flat[i])
                    with torch.no_grad():
                        flat[i] = old + eps
                        lp = float(next_token_loss(ref.forward(toks)[0], toks))
                        flat[i] = old - eps
                        lm = float(next_token_loss(ref.forward(toks)[0], toks))
                        flat[i] = old
                    fd = (lp - lm) / (2 * eps)
                    an = float(gn[i])
                    # Golden grads are fp32 autograd: relative noise ~1e-6 (measured <= 7e-7);
                    # the fp64 central difference has truncation + rounding error ~1e-9.
                    self.assertLessEqual(abs(fd - an), 1e-4 * abs(fd) + 1e-7, (name, n, int(i), fd, an))

    def test_gate_properties(self):
        ref, toks = load("v3_tiny"), tokens_of("v3_tiny")
        diag = {}
        with torch.no_grad():
            ref.forward(toks, diag=diag)
        w = diag["model.layers.1.topk_weight"]
        torch.testing.assert_close(w.sum(-1), torch.full((len(toks),), 2.5, dtype=w.dtype))
        idx = diag["model.layers.1.topk_idx"]
        groups = (idx // 2).unique(dim=None)
        for row in idx:
            self.assertLessEqual(len(set((row // 2).tolist())), 2)  # topk_group = 2 groups of 2
        self.assertGreater(len(groups), 2)


if __name__ == "__main__":
    unittest.main()
