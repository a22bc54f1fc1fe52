// The low-precision cache of linear-layer inputs (train/linear.h LinearInput, train/activations.h):
//  - one linear layer: backward from a BF16 / E4M3 / E5M6 cache gives bit-identical dx and dW to
//    backward from the f32 input (for E4M3 that f32 path is the requantize-from-f32 behaviour the
//    cache replaces), over shapes with partial 128-wide tiles in both directions;
//  - the whole training model: one forward + backward with the caches gives bit-identical losses
//    and every gradient to the same model keeping its linear inputs in f32 (f32_linear_inputs),
//    at bf16 and fp8, with and without recompute, for V3- and V2-Lite-style configs;
//  - the activation arena shrinks by exactly what the shapes predict.
// Bitwise equality is the claim: the cache must hold exactly the operand backward would derive.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/fp8_quant.h"
#include "kernels/fp8_test_util.h"
#include "support/model_fixtures.h"
#include "support/train_fixtures.h"
#include "train/train_model.h"

namespace dsv3 {
namespace {

using testing::make_tokens;
using testing::randomize_model;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// One layer: y, dx, dW with x cached in `fmt` vs x kept in f32.
TEST(LinearCache, LayerBackwardFromCacheEqualsF32Input) {
  struct Shape {
    int64_t N, in, out;
  };
  for (const Shape sh : {Shape{5, 40, 24}, Shape{150, 200, 131}, Shape{129, 128, 257}}) {
    const auto x = kernels::testing::random_matrix(sh.N, sh.in, 1, 50);
    const auto w = kernels::testing::random_matrix(sh.out, sh.in, 2);
    const auto dy = kernels::testing::random_matrix(sh.N, sh.out, 3, 50);
    for (Precision p : {Precision::kBf16, Precision::kFp8}) {
      for (bool attn_out : {false, true}) {
        SCOPED_TRACE(precision_name(p) + (attn_out ? " o_proj input" : "") + " N=" + std::to_string(sh.N) +
                     " in=" + std::to_string(sh.in));
        const CacheFormat fmt = cache_format(p, attn_out);
        std::vector<uint8_t> data(size_t(cache_data_bytes(fmt, sh.N, sh.in)));
        std::vector<float> scales(size_t(cache_scale_bytes(fmt, sh.N, sh.in) / 4 + 1));
        const LinearInput cached{fmt, attn_out, data.data(), scales.data()};
        const LinearInput plain = f32_input(x.data(), attn_out);
        auto run = [&](const LinearInput& in) {
          std::vector<float> y(size_t(sh.N * sh.out)), dx(size_t(sh.N * sh.in), 0.5f), dw(size_t(sh.out * sh.in), 0.25f);
          linear_forward(y.data(), in, x.data(), w.data(), sh.N, sh.in, sh.out, p);
          linear_backward(dx.data(), dw.data(), dy.data(), in, w.data(), sh.N, sh.in, sh.out, p);
          y.insert(y.end(), dx.begin(), dx.end());
          y.insert(y.end(), dw.begin(), dw.end());
          return y;
        };
        const auto a = run(cached), b = run(plain);
        EXPECT_TRUE(same_bits(a, b));
      }
    }
  }
}

// The E5M6 cache of the o_proj input is not the E4M3 cache: its Wgrad operand is one E4M3
// rounding of the E5M6 value, not a requantization of E4M3 tiles, so dW must differ (else the
// attn_out flag would be dead) while staying close (both are FP8 Wgrads of the same product).
TEST(LinearCache, E5m6CacheChangesOnlyTheWgradOperand) {
  const int64_t N = 150, in = 200, out = 64;
  const auto x = kernels::testing::random_matrix(N, in, 4, 50);
  const auto w = kernels::testing::random_matrix(out, in, 5);
  const auto dy = kernels::testing::random_matrix(N, out, 6);
  auto run = [&](bool attn_out) {
    std::vector<float> y(size_t(N * out)), dx(size_t(N * in), 0.0f), dw(size_t(out * in), 0.0f);
    const LinearInput in_ = f32_input(x.data(), attn_out);
    linear_forward(y.data(), in_, x.data(), w.data(), N, in, out, Precision::kFp8);
    linear_backward(dx.data(), dw.data(), dy.data(), in_, w.data(), N, in, out, Precision::kFp8);
    return std::vector<std::vector<float>>{y, dx, dw};
  };
  const auto e4 = run(false), e5 = run(true);
  EXPECT_TRUE(same_bits(e4[0], e5[0]));  // Fprop: E4M3 1x128 from f32 either way
  EXPECT_TRUE(same_bits(e4[1], e5[1]));  // Dgrad does not read x
  EXPECT_FALSE(same_bits(e4[2], e5[2]));
  // Both dW within FP8 Wgrad error of each other: calc_diff ~ r^2/2 with r ~ a few E4M3 roundings
  // (u = 2^-4, RMS u/sqrt(3) each) -> ~3e-3; bound 1e-2.
  EXPECT_LT(kernels::testing::calc_diff(e4[2].data(), e5[2].data(), out * in), 1e-2);
}

struct StepRun {
  LossParts loss;
  std::vector<float> grad;
  int64_t arena = 0, linear = 0;
};

// f32_swiglu: the MoE SwiGLU inputs stay f32 (their cache changes backward's numbers, so the
// bitwise comparisons of the linear-input caches keep it off on both sides).
StepRun run_model(const ModelConfig& c, Precision p, bool f32_inputs, bool recompute, int64_t B, int64_t T,
                  const std::vector<int32_t>& tokens, bool f32_swiglu = true) {
  TrainModel model(c, {.batch = B,
                       .seq_len = T,
                       .mtp_weight = 0.3,
                       .balance_alpha = 0.01,
                       .recompute = recompute,
                       .precision = p,
                       .f32_linear_inputs = f32_inputs,
                       .f32_swiglu_inputs = f32_swiglu});
  randomize_model(model, 7);
  model.params().zero_grad();
  StepRun r;
  r.loss = model.forward_backward({tokens.data(), B, T});
  r.grad.assign(model.params().grad(), model.params().grad() + model.params().numel());
  r.arena = model.activation_bytes();
  r.linear = model.linear_input_bytes();
  return r;
}

// Wider than one 128-wide tile in dim, q_lora_rank and the attention output, and N = 140 rows so
// the Wgrad re-tiling has a full and a partial 128-row group.
ModelConfig wide_config() {
  ModelConfig c = testing::odd_shapes_v3_config();
  c.dim = 136;
  c.q_lora_rank = 130;
  c.n_heads = 20;  // H·d_v = 140
  return c;
}

TEST(LinearCache, TrainingStepEqualsF32Inputs) {
  struct Case {
    const char* name;
    ModelConfig cfg;
    int64_t B, T;
  };
  for (const Case& k : {Case{"v3", testing::odd_shapes_v3_config(), 2, 9},
                        Case{"v2-lite", testing::odd_shapes_v2_lite_config(), 2, 9}, Case{"wide", wide_config(), 2, 70}}) {
    const auto tokens = make_tokens(k.B, k.T, k.cfg.vocab_size, 31);
    for (Precision p : {Precision::kBf16, Precision::kFp8}) {
      for (bool recompute : {false, true}) {
        SCOPED_TRACE(std::string(k.name) + " " + precision_name(p) + (recompute ? " recompute" : ""));
        const StepRun cached = run_model(k.cfg, p, false, recompute, k.B, k.T, tokens);
        const StepRun plain = run_model(k.cfg, p, true, recompute, k.B, k.T, tokens);
        EXPECT_EQ(cached.loss.total, plain.loss.total);
        EXPECT_EQ(cached.loss.main, plain.loss.main);
        EXPECT_EQ(cached.loss.mtp, plain.loss.mtp);
        ASSERT_EQ(cached.grad.size(), plain.grad.size());
        for (size_t i = 0; i < cached.grad.size(); ++i) ASSERT_EQ(cached.grad[i], plain.grad[i]) << "gradient " << i;
        if (!recompute) {
          EXPECT_LT(cached.arena, plain.arena);
        }
      }
    }
  }
}

// Expected bytes of the linear inputs from the shapes: per layer (main: B·T rows; MTP module k:
// B·(T−k) rows) attn.xn (dim), attn.cqn (q_lora_rank), attn.ckv (kv_lora_rank), attn.o (H·d_v)
// and ffn.xn (dim). f32: 4 bytes per element. bf16: 2. fp8: E4M3 1 byte per element + one f32
// scale per 1x128 tile; o_proj's input E5M6, 2 bytes + the same scales; MoE layers' ffn.xn stays
// f32 (router). The f32 forward buffers become one shared buffer each (B·T rows).
TEST(LinearCache, ArenaShrinksByTheExpectedBytes) {
  const ModelConfig c = wide_config();
  const int64_t B = 2, T = 70, N = B * T;
  const int64_t D = c.dim, rq = c.q_lora_rank, rkv = c.kv_lora_rank, Hdv = c.n_heads * c.v_head_dim;
  auto tile = [](int64_t rows, int64_t cols) { return rows * kernels::fp8_groups(cols) * 4; };
  int64_t f32 = 0, bf16 = 0, fp8 = 0;
  auto layer = [&](int64_t n, bool moe) {
    for (int64_t cols : {D, rq, rkv}) {
      f32 += 4 * n * cols;
      bf16 += 2 * n * cols;
      fp8 += n * cols + tile(n, cols);
    }
    f32 += 4 * n * Hdv;
    bf16 += 2 * n * Hdv;
    fp8 += 2 * n * Hdv + tile(n, Hdv);
    f32 += 4 * n * D;
    bf16 += moe ? 4 * n * D : 2 * n * D;
    fp8 += moe ? 4 * n * D : n * D + tile(n, D);
  };
  for (int64_t l = 0; l < c.n_layers; ++l) layer(N, c.is_moe_layer(l));
  for (int64_t k = 1; k <= c.n_mtp_layers; ++k) layer(B * (T - k), c.is_moe_layer(c.n_layers + k - 1));
  const int64_t shared = 4 * N * (D + rq + rkv + Hdv + D);

  const auto tokens = make_tokens(B, T, c.vocab_size, 3);
  const StepRun r32 = run_model(c, Precision::kFp8, true, false, B, T, tokens);
  const StepRun r16 = run_model(c, Precision::kBf16, false, false, B, T, tokens);
  const StepRun r8 = run_model(c, Precision::kFp8, false, false, B, T, tokens);
  EXPECT_EQ(r32.linear, f32);
  EXPECT_EQ(r16.linear, bf16);
  EXPECT_EQ(r8.linear, fp8);
  // Every entry is 64-byte aligned: the totals differ from the sums by less than 64 bytes per
  // entry (about 30 entries per layer, 5 layers counting MTP, both arenas).
  const int64_t pad = 2 * 64 * 40 * (c.n_layers + c.n_mtp_layers);
  EXPECT_NEAR(double(r32.arena - r8.arena), double(f32 - fp8 - shared), double(pad));
  EXPECT_NEAR(double(r32.arena - r16.arena), double(f32 - bf16 - shared), double(pad));
  // The fp32 run keeps the layout of f32 inputs exactly.
  const StepRun f = run_model(c, Precision::kF32, false, false, B, T, tokens);
  EXPECT_EQ(f.arena, r32.arena);
  EXPECT_EQ(f.linear, f32);
}

// The MoE SwiGLU inputs cached like the linear inputs (V3 §3.3.3): the forward (every loss) is
// unchanged bit for bit; backward recomputes the SwiGLU from the decoded inputs, so gradients move
// by about the format's rounding (E4M3: 2^-4 relative per value; BF16: 2^-9), and the arena
// shrinks by exactly the f32 tensors minus the codes, scales and the shared f32 buffers.
TEST(LinearCache, SwigluInputsCachedLikeTheReport) {
  const ModelConfig c = wide_config();
  const int64_t B = 2, T = 70, N = B * T;
  const int64_t K = c.n_activated_experts, Ie = c.moe_inter_dim, Is = c.moe_inter_dim * c.n_shared_experts;
  const auto tokens = make_tokens(B, T, c.vocab_size, 5);
  auto tile = [](int64_t rows, int64_t cols) { return rows * kernels::fp8_groups(cols) * 4; };
  for (Precision p : {Precision::kBf16, Precision::kFp8}) {
    SCOPED_TRACE(precision_name(p));
    const StepRun f32 = run_model(c, p, false, false, B, T, tokens, /*f32_swiglu=*/true);
    const StepRun cached = run_model(c, p, false, false, B, T, tokens, /*f32_swiglu=*/false);
    EXPECT_EQ(cached.loss.total, f32.loss.total);
    EXPECT_EQ(cached.loss.main, f32.loss.main);
    EXPECT_EQ(cached.loss.mtp, f32.loss.mtp);
    ASSERT_EQ(cached.grad.size(), f32.grad.size());
    const double diff = kernels::testing::calc_diff(cached.grad.data(), f32.grad.data(), int64_t(f32.grad.size()));
    EXPECT_GT(diff, 0.0) << "the cache must reach backward";
    // calc_diff ≈ mean squared relative error / 2 where gradients differ. Both SwiGLU inputs carry
    // a rounding of up to 2^-(mantissa bits + 1) relative (E4M3 2^-4, BF16 2^-8), and dg = da·u·silu'(g)
    // takes both: bounded by 2·(2^-4)^2 = 7.8e-3 (E4M3) and 2·(2^-8)^2 = 3.1e-5 (BF16).
    EXPECT_LT(diff, p == Precision::kFp8 ? 7.8e-3 : 3.1e-5);
    // Bytes: per MoE layer (main B·T rows, MTP module k B·(T−k)), eg and eu (rows·K, Ie) and the
    // shared experts' g and u (rows, Is); f32 4 bytes, BF16 2, E4M3 1 + one f32 per 1x128 tile.
    int64_t saved = 0;
    auto layer = [&](int64_t n) {
      for (auto [rows, cols] : {std::pair{n * K, Ie}, std::pair{n * K, Ie}, std::pair{n, Is}, std::pair{n, Is}}) {
        saved += 4 * rows * cols - (p == Precision::kFp8 ? rows * cols + tile(rows, cols) : 2 * rows * cols);
      }
    };
    for (int64_t l = 0; l < c.n_layers; ++l)
      if (c.is_moe_layer(l)) layer(N);
    for (int64_t k = 1; k <= c.n_mtp_layers; ++k)
      if (c.is_moe_layer(c.n_layers + k - 1)) layer(B * (T - k));
    const int64_t shared = 4 * (2 * N * K * Ie + 2 * N * Is);
    EXPECT_NEAR(double(f32.arena - cached.arena), double(saved - shared), double(2 * 64 * 12 * (c.n_layers + 1)));
    EXPECT_LT(cached.arena, f32.arena);
  }
}

}  // namespace
}  // namespace dsv3
