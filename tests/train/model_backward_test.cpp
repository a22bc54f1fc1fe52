// Finite-difference check of the whole training objective L = L_main + λ·L_MTP + Σ α·L_Bal
// w.r.t. every parameter tensor (a random subset of entries per tensor; every tensor covered),
// with the MTP module (λ = 0.5) and the balance loss (α = 0.05, large so its gradient shows),
// on the V3-style and V2-Lite-style tiny configs, with and without recompute.
//
// Tolerance: the loss is f32 logits reduced in double; its rounding is ~1e-7 absolute (ε_f32 ×
// a mean cross-entropy of ~4.6 over a few hundred products), so with h = 2e-3 the quotient
// carries ~5e-5 of noise; truncation h²·|f'''|/6 is ~1e-6 for weights of std 0.1. atol 2e-4 and
// rtol 2e-2 leave margin for both, while gradients here are 1e-4..1e-1 and a wrong term is an
// O(1) relative error on most entries. Perturbations that change any routing decision (the
// selected experts or the balance loss's top-K of any MoE layer) are skipped.
#include <gtest/gtest.h>

#include <vector>

#include "core/parallel_for.h"
#include "support/finite_diff.h"
#include "support/model_fixtures.h"
#include "support/train_fixtures.h"
#include "train/train_model.h"

namespace dsv3 {
namespace {

struct Case {
  int config;  // 0: tiny V3, 1: tiny V2-Lite
  bool recompute;
};

class ModelBackward : public ::testing::TestWithParam<Case> {};

TEST_P(ModelBackward, EveryTensor) {
  const int threads = num_threads();
  set_num_threads(1);
  const ModelConfig cfg = GetParam().config == 0 ? testing::odd_shapes_v3_config() : testing::odd_shapes_v2_lite_config();
  const int64_t B = 2, T = 6;
  TrainModel model(cfg, {.batch = B, .seq_len = T, .mtp_weight = 0.5, .balance_alpha = 0.05,
                         .recompute = GetParam().recompute});
  testing::randomize_model(model, 17);
  auto tokens = testing::make_tokens(B, T, cfg.vocab_size, 23);
  const TrainBatch batch{tokens.data(), B, T};
  model.params().zero_grad();
  const LossParts parts = model.forward_backward(batch);
  EXPECT_GT(parts.balance, 0.0);
  if (cfg.n_mtp_layers > 0) {
    EXPECT_GT(parts.mtp, 0.0);
  }
  const uint64_t base_routing = model.routing_digest();
  auto loss = [&] {
    const double l = model.evaluate(batch).total;
    return model.routing_digest() == base_routing ? l : std::nan("");
  };
  int64_t checked = 0, skipped = 0;
  auto& tensors = model.params().tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    ParamTensor& t = tensors[i];
    auto res = testing::check_gradient(t.name, t.data, t.grad, testing::some_indices(t.numel, 3, i), 2e-3f, 2e-4, 2e-2,
                                       loss);
    checked += res.checked;
    skipped += res.skipped;
  }
  EXPECT_GT(checked, 10 * skipped);
  set_num_threads(threads);
}

INSTANTIATE_TEST_SUITE_P(Configs, ModelBackward,
                         ::testing::Values(Case{0, false}, Case{1, false}, Case{0, true}));

}  // namespace
}  // namespace dsv3
