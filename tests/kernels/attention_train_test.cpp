// The flash-style training attention (attention_train.h) against its slow twin attention_naive /
// attention_naive_backward (start_pos = 0, S = T), on every kernel path, over sequence lengths
// around the query block (64) and the vector widths, with strided heads as MLA lays them out.
//
// Tolerance. Both twins compute the same sums in different orders and with different exp
// implementations. Per element, every quantity is a sum of at most L = T + dqk + dv + 8 rounded
// terms (scores over dqk, softmax over T, exp within 2 ulp, the products over T or dv), so each
// twin is within L·2^-23 (relative) of the exact value of its terms' magnitudes; a score error
// σ·Δs multiplies p by exp(σ·Δs), which amplifies the relative error by c_s = 1 + σ·max_t Σ|q k|.
// With ρ = 2·L·2^-23 (both twins) and magnitudes M computed in double from the exact p, dP, D:
//   o_sj:  ρ·c_s·Σ_t p_st |v_tj|                    dv_tj: ρ·Σ_s c_s p_st |dO_sj|
//   A_st = c_s·σ·p_st·(|dP_st| + Σ_j|dO_sj v_tj| + |D_s| + Σ_j|dO_sj o_sj|)   (bound on |ΔdS_st|/ρ)
//   dq_sj: ρ·Σ_t A_st |k_tj|                        dk_tj: ρ·Σ_s A_st |q_sj|
//   lse_s: ρ·c_s (absolute: the log of a sum with relative error ρ·c_s).
#include "kernels/attention_train.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel_for.h"
#include "kernels/attention.h"
#include "kernels/kernel_paths.h"
#include "kernels/weights_fixture.h"

namespace dsv3::kernels {
namespace {

using testing::random_floats;

struct Case {
  int64_t T, H, dqk, dv;
  int64_t ld_qk, ld_v;  // token strides (>= H · head dim: padding between tokens)
  std::vector<float> q, k, v, dout;
  float scale;

  Case(int64_t T_, int64_t H_, int64_t dqk_, int64_t dv_, uint64_t seed)
      : T(T_), H(H_), dqk(dqk_), dv(dv_), ld_qk(H_ * dqk_ + 3), ld_v(H_ * dv_ + 5) {
    q = random_floats(T * ld_qk, seed);
    k = random_floats(T * ld_qk, seed + 1);
    v = random_floats(T * ld_v, seed + 2);
    dout = random_floats(T * ld_v, seed + 3);
    scale = float(1.0 / std::sqrt(double(dqk)));
  }
  HeadsView<const float> qv() const { return {q.data(), ld_qk, dqk}; }
  HeadsView<const float> kv() const { return {k.data(), ld_qk, dqk}; }
  HeadsView<const float> vv() const { return {v.data(), ld_v, dv}; }
  HeadsView<const float> gv() const { return {dout.data(), ld_v, dv}; }
};

// Bounds of the header comment for one case, in the layouts of the outputs.
struct Bounds {
  std::vector<double> o, lse, dq, dk, dv;
};

Bounds derive_bounds(const Case& c) {
  const int64_t T = c.T, H = c.H, dqk = c.dqk, dv = c.dv;
  const double rho = 2.0 * double(T + dqk + dv + 8) * 0x1p-23, sigma = c.scale;
  Bounds b{std::vector<double>(size_t(T * c.ld_v)), std::vector<double>(size_t(H * T)),
           std::vector<double>(size_t(T * c.ld_qk)), std::vector<double>(size_t(T * c.ld_qk)),
           std::vector<double>(size_t(T * c.ld_v))};
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t s = 0; s < T; ++s) {
      const float* qs = c.q.data() + s * c.ld_qk + h * dqk;
      const float* gs = c.dout.data() + s * c.ld_v + h * dv;
      std::vector<double> z(size_t(s + 1)), p(size_t(s + 1)), o(size_t(dv), 0.0);
      double mx = -INFINITY, cond = 0.0, sum = 0.0;
      for (int64_t t = 0; t <= s; ++t) {
        const float* kt = c.k.data() + t * c.ld_qk + h * dqk;
        double dot = 0.0, mag = 0.0;
        for (int64_t j = 0; j < dqk; ++j) dot += double(qs[j]) * kt[j], mag += std::fabs(double(qs[j]) * kt[j]);
        z[size_t(t)] = sigma * dot;
        mx = std::max(mx, z[size_t(t)]);
        cond = std::max(cond, sigma * mag);
      }
      const double c_s = 1.0 + cond;
      for (int64_t t = 0; t <= s; ++t) sum += p[size_t(t)] = std::exp(z[size_t(t)] - mx);
      for (auto& x : p) x /= sum;
      b.lse[size_t(h * T + s)] = rho * c_s;
      for (int64_t t = 0; t <= s; ++t)
        for (int64_t j = 0; j < dv; ++j) o[size_t(j)] += p[size_t(t)] * c.v[size_t(t * c.ld_v + h * dv + j)];
      double D = 0.0, Dmag = 0.0;
      for (int64_t j = 0; j < dv; ++j) D += gs[j] * o[size_t(j)], Dmag += std::fabs(gs[j] * o[size_t(j)]);
      for (int64_t t = 0; t <= s; ++t) {
        const float* vt = c.v.data() + t * c.ld_v + h * dv;
        const float* kt = c.k.data() + t * c.ld_qk + h * dqk;
        const double pt = p[size_t(t)];
        double dp = 0.0, dpmag = 0.0;
        for (int64_t j = 0; j < dv; ++j) {
          dp += double(gs[j]) * vt[j], dpmag += std::fabs(double(gs[j]) * vt[j]);
          b.o[size_t(s * c.ld_v + h * dv + j)] += rho * c_s * pt * std::fabs(vt[j]);
          b.dv[size_t(t * c.ld_v + h * dv + j)] += rho * c_s * pt * std::fabs(gs[j]);
        }
        const double A = c_s * sigma * pt * (std::fabs(dp) + dpmag + std::fabs(D) + Dmag);
        for (int64_t j = 0; j < dqk; ++j) {
          b.dq[size_t(s * c.ld_qk + h * dqk + j)] += rho * A * std::fabs(kt[j]);
          b.dk[size_t(t * c.ld_qk + h * dqk + j)] += rho * A * std::fabs(qs[j]);
        }
      }
    }
  }
  return b;
}

void expect_within(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                   const std::vector<double>& bound) {
  int64_t bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (!(std::fabs(double(got[i]) - double(want[i])) <= bound[i])) {
      ++bad;
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", twin " << want[i] << ", bound " << bound[i];
    }
  }
}

void check_case(const Case& c) {
  const int64_t T = c.T, H = c.H;
  const Bounds b = derive_bounds(c);
  // The twin: probabilities (H, T, T), then its backward.
  std::vector<float> o_ref(c.v.size(), 0.0f), probs(size_t(H * T * T));
  std::vector<float> dq_ref(c.q.size(), 0.25f), dk_ref(c.k.size(), 0.25f), dv_ref(c.v.size(), 0.25f);
  {
    testing::ScopedKernelPath portable(KernelPath::kPortable);
    attention_naive({o_ref.data(), c.ld_v, c.dv}, probs.data(), c.qv(), c.kv(), c.vv(), T, T, H, c.dqk, c.dv, 0,
                    c.scale);
    attention_naive_backward({dq_ref.data(), c.ld_qk, c.dqk}, {dk_ref.data(), c.ld_qk, c.dqk},
                             {dv_ref.data(), c.ld_v, c.dv}, c.gv(), probs.data(), c.qv(), c.kv(), c.vv(), T, T, H,
                             c.dqk, c.dv, 0, c.scale);
  }
  // lse in double, for the saved statistics.
  std::vector<float> lse_ref(size_t(H * T));
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t s = 0; s < T; ++s) {
      std::vector<double> z;
      for (int64_t t = 0; t <= s; ++t) {
        double dot = 0.0;
        for (int64_t j = 0; j < c.dqk; ++j)
          dot += double(c.q[size_t(s * c.ld_qk + h * c.dqk + j)]) * c.k[size_t(t * c.ld_qk + h * c.dqk + j)];
        z.push_back(c.scale * dot);
      }
      const double mx = *std::max_element(z.begin(), z.end());
      double sum = 0.0;
      for (double x : z) sum += std::exp(x - mx);
      lse_ref[size_t(h * T + s)] = float(mx + std::log(sum));
    }
  }
  testing::for_each_path([&](KernelPath) {
    std::vector<float> o(c.v.size(), 0.0f), lse(size_t(H * T));
    attention_causal_forward({o.data(), c.ld_v, c.dv}, lse.data(), c.qv(), c.kv(), c.vv(), T, H, c.dqk, c.dv, c.scale);
    expect_within("o", o, o_ref, b.o);
    expect_within("lse", lse, lse_ref, b.lse);
    std::vector<float> dq(c.q.size(), 0.25f), dk(c.k.size(), 0.25f), dv(c.v.size(), 0.25f);
    attention_causal_backward({dq.data(), c.ld_qk, c.dqk}, {dk.data(), c.ld_qk, c.dqk}, {dv.data(), c.ld_v, c.dv},
                              c.gv(), {o.data(), c.ld_v, c.dv}, lse.data(), c.qv(), c.kv(), c.vv(), T, H, c.dqk, c.dv,
                              c.scale);
    expect_within("dq", dq, dq_ref, b.dq);
    expect_within("dk", dk, dk_ref, b.dk);
    expect_within("dv", dv, dv_ref, b.dv);
    // Padding between tokens is never written (the accumulated 0.25 stays, the output's 0 stays).
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(o[size_t(t * c.ld_v + H * c.dv)], 0.0f);
      EXPECT_EQ(dq[size_t(t * c.ld_qk + H * c.dqk)], 0.25f);
      EXPECT_EQ(dv[size_t(t * c.ld_v + H * c.dv)], 0.25f);
    }
  });
}

TEST(AttentionTrain, MatchesNaiveTwinOverEdgeLengths) {
  for (int64_t T : {1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 129}) {
    SCOPED_TRACE("T = " + std::to_string(T));
    check_case(Case(T, 3, 13, 7, uint64_t(10 * T)));
  }
}

TEST(AttentionTrain, MatchesNaiveTwinAtModelHeadDims) {
  // The benchmark model's heads: d_qk = 32 + 16, d_v = 32.
  check_case(Case(200, 2, 48, 32, 7));
}

TEST(AttentionTrain, SameBitsForOneAndTwoThreads) {
  const Case c(130, 4, 48, 32, 3);
  auto run = [&](int threads) {
    const int saved = num_threads();
    set_num_threads(threads);
    std::vector<float> o(c.v.size(), 0.0f), lse(size_t(c.H * c.T));
    std::vector<float> dq(c.q.size(), 0.0f), dk(c.k.size(), 0.0f), dv(c.v.size(), 0.0f);
    attention_causal_forward({o.data(), c.ld_v, c.dv}, lse.data(), c.qv(), c.kv(), c.vv(), c.T, c.H, c.dqk, c.dv,
                             c.scale);
    attention_causal_backward({dq.data(), c.ld_qk, c.dqk}, {dk.data(), c.ld_qk, c.dqk}, {dv.data(), c.ld_v, c.dv},
                              c.gv(), {o.data(), c.ld_v, c.dv}, lse.data(), c.qv(), c.kv(), c.vv(), c.T, c.H, c.dqk,
                              c.dv, c.scale);
    set_num_threads(saved);
    o.insert(o.end(), lse.begin(), lse.end());
    o.insert(o.end(), dq.begin(), dq.end());
    o.insert(o.end(), dk.begin(), dk.end());
    o.insert(o.end(), dv.begin(), dv.end());
    return o;
  };
  EXPECT_EQ(run(1), run(2));
}

}  // namespace
}  // namespace dsv3::kernels
