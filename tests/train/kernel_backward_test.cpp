// Finite-difference checks of every kernel-level backward used by training: RMSNorm (dx, dw,
// strided rows), RoPE (adjoint), SwiGLU, sigmoid, softmax, cross-entropy (with an ignored row),
// embedding (repeated tokens), the naive causal attention core (with a query block that starts
// past position 0), and the linear layer.
//
// Objective L = Σ r·out with r ~ N(0,1), inputs O(1), step h = 1e-2 (f32). Truncation error
// h²·|f'''|/6 ≲ 2e-5 for these smooth O(1) functions; rounding of L is ~ε_f32·√n·|r·out| ≲ 1e-6,
// i.e. ≲ 1e-4 after dividing by 2h. atol 5e-4 and rtol 1e-3 leave a 5x margin, while a wrong
// term of the backward is an O(1) error.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "support/finite_diff.h"
#include "train/linear.h"

namespace dsv3 {
namespace {

using testing::all_indices;
using testing::check_gradient;
using testing::random_vector;
using testing::weighted_sum;

constexpr float kH = 1e-2f;
constexpr double kAtol = 5e-4, kRtol = 1e-3;

TEST(KernelBackward, RmsNorm) {
  const int64_t T = 5, C = 13, ld = 17;  // strided rows: the kv_norm case
  auto x = random_vector(T * ld, 1);
  auto w = random_vector(C, 2, 0.3f, 1.0f);
  auto r = random_vector(T * C, 3);
  std::vector<float> out(static_cast<size_t>(T * C)), rstd(static_cast<size_t>(T));
  auto loss = [&] {
    kernels::rmsnorm_forward(out.data(), C, rstd.data(), x.data(), ld, w.data(), T, C, 1e-6f);
    return weighted_sum(out.data(), r.data(), T * C);
  };
  loss();
  std::vector<float> dx(static_cast<size_t>(T * ld), 0.5f), dw(static_cast<size_t>(C), 0.25f);  // accumulate onto non-zero
  kernels::rmsnorm_backward(dx.data(), ld, dw.data(), r.data(), C, x.data(), ld, w.data(), rstd.data(), T, C);
  for (auto& v : dx) v -= 0.5f;
  for (auto& v : dw) v -= 0.25f;
  std::vector<int64_t> idx;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) idx.push_back(t * ld + c);
  check_gradient("rmsnorm dx", x.data(), dx.data(), idx, kH, kAtol, kRtol, loss);
  check_gradient("rmsnorm dw", w.data(), dw.data(), all_indices(C), kH, kAtol, kRtol, loss);
}

TEST(KernelBackward, Rope) {
  const int64_t T = 4, V = 3, dr = 6, half = dr / 2;
  auto x = random_vector(T * V * dr, 4);
  auto r = random_vector(T * V * dr, 5);
  std::vector<float> cos(static_cast<size_t>(T * half)), sin(static_cast<size_t>(T * half));
  for (int64_t i = 0; i < T * half; ++i) {
    cos[size_t(i)] = std::cos(0.37f * float(i + 1));
    sin[size_t(i)] = std::sin(0.37f * float(i + 1));
  }
  std::vector<float> y;
  auto loss = [&] {
    y = x;
    kernels::rope_forward(y.data(), T, V, V * dr, dr, dr, cos.data(), sin.data());
    return weighted_sum(y.data(), r.data(), T * V * dr);
  };
  std::vector<float> dx = r;
  kernels::rope_backward(dx.data(), T, V, V * dr, dr, dr, cos.data(), sin.data());
  check_gradient("rope", x.data(), dx.data(), all_indices(T * V * dr), kH, kAtol, kRtol, loss);
}

TEST(KernelBackward, SwigluSigmoidSoftmax) {
  const int64_t n = 23;
  auto g = random_vector(n, 6, 2.0f);
  auto u = random_vector(n, 7);
  auto r = random_vector(n, 8);
  std::vector<float> out(static_cast<size_t>(n));
  auto swiglu = [&] {
    kernels::swiglu_forward(out.data(), g.data(), u.data(), n);
    return weighted_sum(out.data(), r.data(), n);
  };
  std::vector<float> dg(static_cast<size_t>(n)), du(static_cast<size_t>(n));
  kernels::swiglu_backward(dg.data(), du.data(), r.data(), g.data(), u.data(), n);
  check_gradient("swiglu dgate", g.data(), dg.data(), all_indices(n), kH, kAtol, kRtol, swiglu);
  check_gradient("swiglu dup", u.data(), du.data(), all_indices(n), kH, kAtol, kRtol, swiglu);

  auto sig = [&] {
    for (int64_t i = 0; i < n; ++i) out[size_t(i)] = kernels::sigmoid(g[size_t(i)]);
    return weighted_sum(out.data(), r.data(), n);
  };
  sig();
  std::vector<float> ds(static_cast<size_t>(n));
  kernels::sigmoid_backward(ds.data(), r.data(), out.data(), n);
  check_gradient("sigmoid", g.data(), ds.data(), all_indices(n), kH, kAtol, kRtol, sig);

  auto soft = [&] {
    out = g;
    kernels::softmax_row(out.data(), n);
    return weighted_sum(out.data(), r.data(), n);
  };
  soft();
  std::vector<float> dsm(static_cast<size_t>(n));
  kernels::softmax_row_backward(dsm.data(), r.data(), out.data(), n);
  check_gradient("softmax", g.data(), dsm.data(), all_indices(n), kH, kAtol, kRtol, soft);
}

TEST(KernelBackward, CrossEntropy) {
  const int64_t N = 5, V = 11;
  auto logits = random_vector(N * V, 9, 2.0f);
  std::vector<int32_t> targets = {3, 0, -1, 10, 3};  // row 2 is ignored
  std::vector<float> losses(static_cast<size_t>(N));
  const float dloss = 0.7f;
  auto loss = [&] {
    EXPECT_EQ(kernels::cross_entropy_forward(losses.data(), nullptr, logits.data(), targets.data(), N, V), 4);
    double s = 0;
    for (float l : losses) s += dloss * double(l);
    return s;
  };
  loss();
  EXPECT_EQ(losses[2], 0.0f);
  std::vector<float> d(static_cast<size_t>(N * V));
  kernels::cross_entropy_backward(d.data(), dloss, logits.data(), nullptr, targets.data(), N, V, true);
  for (int64_t v = 0; v < V; ++v) EXPECT_EQ(d[size_t(2 * V + v)], 0.0f);
  check_gradient("cross_entropy", logits.data(), d.data(), all_indices(N * V), kH, kAtol, kRtol, loss);

  // The forward's log-sum-exp and the overwrite mode give the same bits as recomputing and
  // accumulating into zeros; overwriting zeroes the ignored row; accumulating adds.
  std::vector<float> lse(static_cast<size_t>(N)), d2(d.size(), 123.0f), d3(d.size());
  kernels::cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), N, V);
  kernels::cross_entropy_backward(d2.data(), dloss, logits.data(), lse.data(), targets.data(), N, V, false);
  EXPECT_EQ(d2, d);
  for (size_t i = 0; i < d3.size(); ++i) d3[i] = float(i);
  kernels::cross_entropy_backward(d3.data(), dloss, logits.data(), lse.data(), targets.data(), N, V, true);
  for (size_t i = 0; i < d3.size(); ++i) EXPECT_FLOAT_EQ(d3[i], float(i) + d[i]) << i;
}

TEST(KernelBackward, Embedding) {
  const int64_t V = 7, C = 5, N = 6;
  auto table = random_vector(V * C, 10);
  std::vector<int32_t> tokens = {2, 5, 2, 0, 6, 2};
  auto r = random_vector(N * C, 11);
  std::vector<float> out(static_cast<size_t>(N * C));
  auto loss = [&] {
    kernels::embedding_forward(out.data(), table.data(), tokens.data(), N, C);
    return weighted_sum(out.data(), r.data(), N * C);
  };
  std::vector<float> d(static_cast<size_t>(V * C));
  kernels::embedding_backward(d.data(), r.data(), tokens.data(), N, C);
  check_gradient("embedding", table.data(), d.data(), all_indices(V * C), kH, kAtol, kRtol, loss);
}

TEST(KernelBackward, AttentionCore) {
  // A block of S = 4 queries starting at position 3 over T = 7 keys; strided heads as MLA uses.
  const int64_t S = 4, T = 7, H = 3, dqk = 5, dv = 4, start = 3;
  const float scale = 0.6f;
  auto q = random_vector(S * H * dqk, 12);
  auto k = random_vector(T * H * dqk, 13);
  auto v = random_vector(T * H * (dv + 2), 14);  // v rows padded: head stride dv + 2
  auto r = random_vector(S * H * dv, 15);
  std::vector<float> out(static_cast<size_t>(S * H * dv)), probs(static_cast<size_t>(H * S * T));
  auto views = [&](float* o) {
    return std::tuple{kernels::HeadsView<float>{o, H * dv, dv}, kernels::HeadsView<const float>{q.data(), H * dqk, dqk},
                      kernels::HeadsView<const float>{k.data(), H * dqk, dqk},
                      kernels::HeadsView<const float>{v.data(), H * (dv + 2), dv + 2}};
  };
  auto loss = [&] {
    auto [ov, qv, kv, vv] = views(out.data());
    kernels::attention_naive(ov, probs.data(), qv, kv, vv, S, T, H, dqk, dv, start, scale);
    return weighted_sum(out.data(), r.data(), S * H * dv);
  };
  loss();
  std::vector<float> dq(q.size()), dk(k.size()), dvv(v.size());
  auto [ov, qv, kv, vv] = views(out.data());
  kernels::attention_naive_backward({dq.data(), H * dqk, dqk}, {dk.data(), H * dqk, dqk},
                                    {dvv.data(), H * (dv + 2), dv + 2}, {r.data(), H * dv, dv}, probs.data(), qv, kv,
                                    vv, S, T, H, dqk, dv, start, scale);
  check_gradient("attention dq", q.data(), dq.data(), all_indices(int64_t(q.size())), kH, kAtol, kRtol, loss);
  check_gradient("attention dk", k.data(), dk.data(), all_indices(int64_t(k.size())), kH, kAtol, kRtol, loss);
  check_gradient("attention dv", v.data(), dvv.data(), all_indices(int64_t(v.size())), kH, kAtol, kRtol, loss);
}

TEST(KernelBackward, Linear) {
  const int64_t N = 6, in = 19, out = 7;
  auto x = random_vector(N * in, 16);
  auto w = random_vector(out * in, 17, 0.3f);
  auto r = random_vector(N * out, 18);
  std::vector<float> y(static_cast<size_t>(N * out));
  auto loss = [&] {
    linear_forward(y.data(), x.data(), w.data(), N, in, out);
    return weighted_sum(y.data(), r.data(), N * out);
  };
  std::vector<float> dx(x.size()), dw(w.size());
  linear_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), N, in, out);
  check_gradient("linear dx", x.data(), dx.data(), all_indices(N * in), kH, kAtol, kRtol, loss);
  check_gradient("linear dw", w.data(), dw.data(), all_indices(out * in), kH, kAtol, kRtol, loss);
}

}  // namespace
}  // namespace dsv3
