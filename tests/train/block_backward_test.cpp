// Finite-difference checks of the model-level backwards: router affinities and gate weights,
// the sequence-wise balance loss, one expert MLP, the MLA block and the MoE block (router,
// routed and shared experts, balance loss), on the tiny test configs (3 heads,
// v_head_dim != qk_nope_head_dim, dims not multiples of 8).
//
// Finite differences across a routing discontinuity are invalid: every objective that routes
// returns NaN when a perturbation changes a selection, and that entry is skipped (the tests
// require that most entries are checked). Step h = 1e-2 on O(1) inputs or 3e-3 on weights of
// std 0.1; tolerance as in kernel_backward_test (atol covers f32 rounding of the objective
// divided by 2h, ≲ 1e-4 here; rtol covers truncation).
#include <gtest/gtest.h>

#include <vector>

#include "core/parallel_for.h"
#include "kernels/activation.h"
#include "model/gate.h"
#include "model/rope_table.h"
#include "support/finite_diff.h"
#include "support/model_fixtures.h"
#include "train/activations.h"
#include "train/layer_train.h"
#include "train/model_params.h"

namespace dsv3 {
namespace {

using testing::all_indices;
using testing::check_gradient;
using testing::random_vector;
using testing::some_indices;
using testing::weighted_sum;

constexpr double kAtol = 5e-4, kRtol = 2e-3;

// Runs the FD tests on one thread: they are about the math (thread invariance is tested
// elsewhere), and thousands of tiny parallel regions are slow on a shared machine.
class OneThread : public ::testing::Test {
 protected:
  void SetUp() override {
    threads_ = num_threads();
    set_num_threads(1);
  }
  void TearDown() override { set_num_threads(threads_); }
  int threads_ = 1;
};

using RouterBackward = OneThread;

TEST_F(RouterBackward, AffinitiesAndGateWeights) {
  for (const ModelConfig& cfg : {testing::odd_shapes_v3_config(), testing::odd_shapes_v2_lite_config()}) {
    const RouterConfig rc = RouterConfig::from(cfg);
    const int64_t T = 6, E = rc.n_experts, K = rc.top_k;
    auto logits = random_vector(T * E, 21);
    auto bias = random_vector(E, 22, 0.05f);
    if (!cfg.has_gate_bias()) bias.clear();
    auto r = random_vector(T * K, 23);
    std::vector<float> s(static_cast<size_t>(T * E)), w(static_cast<size_t>(T * K)), work(static_cast<size_t>(E));
    std::vector<int32_t> sel(static_cast<size_t>(T * K));
    auto route_all = [&] {
      s = logits;
      for (int64_t t = 0; t < T; ++t) {
        float* st = s.data() + t * E;
        if (rc.score_func == ScoreFunc::Sigmoid) {
          for (int64_t e = 0; e < E; ++e) st[e] = kernels::sigmoid(st[e]);
        } else {
          kernels::softmax_row(st, E);
        }
        route_token(sel.data() + t * K, w.data() + t * K, st, bias, rc, work.data());
      }
    };
    route_all();
    const std::vector<int32_t> base_sel = sel;
    std::vector<float> ds(static_cast<size_t>(T * E)), dlogits(static_cast<size_t>(T * E));
    for (int64_t t = 0; t < T; ++t)
      gate_weights_backward(ds.data() + t * E, r.data() + t * K, s.data() + t * E, sel.data() + t * K, rc);
    for (int64_t t = 0; t < T; ++t) {
      if (rc.score_func == ScoreFunc::Sigmoid) {
        kernels::sigmoid_backward(dlogits.data() + t * E, ds.data() + t * E, s.data() + t * E, E);
      } else {
        kernels::softmax_row_backward(dlogits.data() + t * E, ds.data() + t * E, s.data() + t * E, E);
      }
    }
    auto loss = [&] {
      route_all();
      return sel == base_sel ? weighted_sum(w.data(), r.data(), T * K) : std::nan("");
    };
    auto res = check_gradient("router logits", logits.data(), dlogits.data(), all_indices(T * E), 1e-3f, kAtol, kRtol,
                              loss);
    EXPECT_GT(res.checked, 4 * res.skipped);
  }
}

TEST_F(RouterBackward, BalanceLoss) {
  const int64_t T = 7, E = 8, K = 3;
  auto logits = random_vector(T * E, 24);
  std::vector<float> s(static_cast<size_t>(T * E)), f(static_cast<size_t>(E)), work(static_cast<size_t>(E));
  const double alpha = 0.3;
  auto forward = [&] {
    for (int64_t i = 0; i < T * E; ++i) s[size_t(i)] = kernels::sigmoid(logits[size_t(i)]);
    return alpha * balance_loss_forward(f.data(), s.data(), T, E, K, work.data());
  };
  const double l0 = forward();
  EXPECT_GT(l0, 0.0);
  const std::vector<float> base_f = f;
  // f is a constant: the objective is only valid while the top-K (hence f) is unchanged.
  auto loss = [&] {
    const double l = forward();
    return f == base_f ? l : std::nan("");
  };
  forward();
  std::vector<float> ds(static_cast<size_t>(T * E)), dlogits(static_cast<size_t>(T * E));
  balance_loss_backward(ds.data(), float(alpha), f.data(), s.data(), T, E);
  kernels::sigmoid_backward(dlogits.data(), ds.data(), s.data(), T * E);
  auto res = check_gradient("balance logits", logits.data(), dlogits.data(), all_indices(T * E), 1e-3f, 1e-5, kRtol,
                            loss);
  EXPECT_GT(res.checked, 4 * res.skipped);
}

// Parameters, activations and context of one config, for block-level checks.
struct Block {
  ModelConfig cfg;
  ParamSet set;
  ModelParams P, G;
  ActivationArena arena;
  RopeTable rope;
  std::vector<int64_t> positions;
  LayerContext ctx;

  Block(const ModelConfig& c, int64_t B, int64_t T, double alpha) : cfg(c), arena(c, B, T, 0, false), rope(c) {
    build_params(cfg, set, P, G);
    for (size_t i = 0; i < set.tensors().size(); ++i) {
      ParamTensor& t = set.tensors()[i];
      auto v = t.shape.size() == 1 ? random_vector(t.numel, 100 + i, 0.2f, 1.0f) : random_vector(t.numel, 100 + i, 0.1f);
      std::copy(v.begin(), v.end(), t.data);
    }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) positions.push_back(t);
    rope.compute(positions.data(), B * T);
    ctx.cfg = &cfg;
    ctx.router = RouterConfig::from(cfg);
    ctx.B = B;
    ctx.T = T;
    ctx.cos = rope.cos();
    ctx.sin = rope.sin();
    ctx.softmax_scale = float(attention_softmax_scale(cfg));
    ctx.balance_alpha = alpha;
    ctx.scratch = &arena.acts().scratch;
  }
  // Checks `some` entries of every parameter tensor whose name contains `part` of layer `l`.
  template <typename F>
  void check_params(const std::string& prefix, int64_t some, F&& loss) {
    for (size_t i = 0; i < set.tensors().size(); ++i) {
      ParamTensor& t = set.tensors()[i];
      if (t.name.rfind(prefix, 0) != 0) continue;
      auto res = check_gradient(t.name, t.data, t.grad, some_indices(t.numel, some, i), 3e-3f, kAtol, kRtol, loss);
      EXPECT_GE(res.checked, res.skipped) << t.name;
    }
  }
};

using BlockBackward = OneThread;

TEST_F(BlockBackward, ExpertMlp) {
  Block blk(testing::odd_shapes_v3_config(), 1, 6, 0.0);
  const MlpParams& p = blk.P.layers[1].experts[2];
  const MlpParams& g = blk.G.layers[1].experts[2];
  const int64_t N = 6, D = blk.cfg.dim, I = p.inter;
  auto x = random_vector(N * D, 31);
  auto r = random_vector(N * D, 32);
  std::vector<float> y(static_cast<size_t>(N * D)), gate(static_cast<size_t>(N * I)), up(static_cast<size_t>(N * I));
  StepScratch& s = *blk.ctx.scratch;
  auto loss = [&] {
    mlp_train_forward(y.data(), gate.data(), up.data(), s.act, x.data(), p, N, D);
    return weighted_sum(y.data(), r.data(), N * D);
  };
  loss();
  std::vector<float> dx(x.size());
  mlp_train_backward(dx.data(), g, r.data(), x.data(), gate.data(), up.data(), p, N, D, s);
  check_gradient("mlp dx", x.data(), dx.data(), all_indices(N * D), 1e-2f, kAtol, kRtol, loss);
  blk.check_params("model.layers.1.mlp.experts.2.", 40, loss);
}

class MlaBackward : public OneThread, public ::testing::WithParamInterface<int> {};

TEST_P(MlaBackward, Block) {
  const ModelConfig cfg = GetParam() == 0 ? testing::odd_shapes_v3_config() : testing::odd_shapes_v2_lite_config();
  const int64_t B = 2, T = 5;
  Block blk(cfg, B, T, 0.0);
  const int64_t N = B * T, D = cfg.dim;
  MlaActs& a = blk.arena.acts().layers[0].attn;
  auto xn = random_vector(N * D, 41);
  auto r = random_vector(N * D, 42);
  std::vector<float> out(static_cast<size_t>(N * D));
  auto loss = [&] {
    std::copy(xn.begin(), xn.end(), a.xn);
    mla_train_forward(out.data(), a, blk.P.layers[0].attn, blk.ctx);
    return weighted_sum(out.data(), r.data(), N * D);
  };
  loss();
  std::vector<float> dxn(xn.size());
  blk.set.zero_grad();
  mla_train_backward(dxn.data(), blk.G.layers[0].attn, r.data(), a, blk.P.layers[0].attn, blk.ctx);
  check_gradient("mla dxn", xn.data(), dxn.data(), some_indices(N * D, 120, 43), 1e-2f, kAtol, kRtol, loss);
  blk.check_params("model.layers.0.self_attn.", 25, loss);
}

INSTANTIATE_TEST_SUITE_P(Configs, MlaBackward, ::testing::Values(0, 1));

class MoeBackward : public OneThread, public ::testing::WithParamInterface<int> {};

TEST_P(MoeBackward, Block) {
  const ModelConfig cfg = GetParam() == 0 ? testing::odd_shapes_v3_config() : testing::odd_shapes_v2_lite_config();
  const int64_t B = 2, T = 5;
  Block blk(cfg, B, T, 0.05);
  const int64_t N = B * T, D = cfg.dim, K = cfg.n_activated_experts;
  FfnActs& a = blk.arena.acts().layers[1].ffn;
  auto xn = random_vector(N * D, 51);
  auto r = random_vector(N * D, 52);
  auto bias = random_vector(cfg.n_routed_experts, 53, 0.05f);
  if (!cfg.has_gate_bias()) bias.clear();
  std::vector<float> y(static_cast<size_t>(N * D));
  std::vector<int64_t> counts(static_cast<size_t>(cfg.n_routed_experts));
  auto forward = [&] {
    std::copy(xn.begin(), xn.end(), a.xn);
    const double bal = moe_train_forward(y.data(), a, blk.P.layers[1], bias, counts.data(), blk.ctx);
    return weighted_sum(y.data(), r.data(), N * D) + bal;
  };
  const double l0 = forward();
  EXPECT_TRUE(std::isfinite(l0));
  const std::vector<int32_t> base(a.experts, a.experts + N * K);
  const std::vector<float> base_f(a.f, a.f + B * cfg.n_routed_experts);
  auto loss = [&] {
    const double l = forward();
    const bool same = std::equal(base.begin(), base.end(), a.experts) && std::equal(base_f.begin(), base_f.end(), a.f);
    return same ? l : std::nan("");
  };
  forward();
  std::vector<float> dxn(xn.size());
  blk.set.zero_grad();
  moe_train_backward(dxn.data(), blk.G.layers[1], r.data(), a, blk.P.layers[1], blk.ctx);
  // h = 1e-2: a token's perturbation changes its D outputs, whose f32 rounding (~ε·√D per
  // product, ~2e-6 on the objective) must stay well under atol·2h; routing margins are larger
  // than the ~1e-3 logit change this causes for all but a few entries (skipped).
  auto res = check_gradient("moe dxn", xn.data(), dxn.data(), some_indices(N * D, 150, 54), 1e-2f, kAtol, kRtol, loss);
  EXPECT_GT(res.checked, 4 * res.skipped);
  blk.check_params("model.layers.1.mlp.", 8, loss);
}

INSTANTIATE_TEST_SUITE_P(Configs, MoeBackward, ::testing::Values(0, 1));

}  // namespace
}  // namespace dsv3
