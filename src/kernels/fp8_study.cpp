// The promotion study: random operands, quantized as in training, two emulated accumulators.
#include "kernels/fp8_study.h"

#include <cmath>
#include <vector>

#include "core/rng.h"

namespace dsv3::kernels {
namespace {

AccError measure(const std::vector<float>& c, const std::vector<double>& ref) {
  AccError e;
  double sum_rel = 0, err2 = 0, ref2 = 0;
  int64_t n = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double d = double(c[i]) - ref[i];
    err2 += d * d;
    ref2 += ref[i] * ref[i];
    if (ref[i] == 0) continue;
    const double rel = std::fabs(d) / std::fabs(ref[i]);
    e.max_rel = std::max(e.max_rel, rel);
    sum_rel += rel;
    ++n;
  }
  e.mean_rel = n > 0 ? sum_rel / double(n) : 0.0;
  e.frob_rel = ref2 > 0 ? std::sqrt(err2 / ref2) : 0.0;
  return e;
}

}  // namespace

Fp8StudyRow fp8_accumulation_study(int64_t K, const Fp8StudyOptions& opt) {
  const int64_t M = opt.M, N = opt.N;
  // Independent streams per operand and per K, so each row of the table is its own experiment.
  Rng rx(opt.seed, 2 * uint64_t(K)), rw(opt.seed, 2 * uint64_t(K) + 1);
  auto draw = [&](const Rng& r, uint64_t i) {
    return opt.dist == StudyDist::kNormal ? r.normal(i) : r.uniform(i);
  };
  std::vector<float> x(size_t(M * K)), w(size_t(N * K));
  for (size_t i = 0; i < x.size(); ++i) x[i] = draw(rx, i);
  for (size_t i = 0; i < w.size(); ++i) w[i] = draw(rw, i);

  std::vector<uint8_t> xq(x.size()), wq(w.size()), wqt(w.size());
  std::vector<float> xs(size_t(M * fp8_groups(K))), ws(size_t(fp8_groups(N) * fp8_groups(K)));
  quantize_1x128(xq.data(), xs.data(), x.data(), M, K, K, ScaleFmt::kF32);
  quantize_128x128(wq.data(), ws.data(), w.data(), N, K, ScaleFmt::kF32);
  transpose_codes(wqt.data(), wq.data(), N, K);
  const Fp8Lhs a{xq.data(), xs.data(), M, K};
  const Fp8Rhs b = fprop_rhs(Fp8WeightView{wq.data(), wqt.data(), ws.data(), N, K});

  std::vector<double> ref(size_t(M * N));
  fp8_gemm_f64(ref.data(), a, b);
  std::vector<float> c(size_t(M * N));
  LimitedAccum acc{.mantissa_bits = opt.mantissa_bits, .align_with_accumulator = opt.align_with_accumulator};
  Fp8StudyRow row;
  row.K = K;
  row.mantissa_bits = opt.mantissa_bits;
  acc.promote = false;
  fp8_gemm_emulated(c.data(), a, b, acc);
  row.unpromoted = measure(c, ref);
  acc.promote = true;
  fp8_gemm_emulated(c.data(), a, b, acc);
  row.promoted = measure(c, ref);
  return row;
}

}  // namespace dsv3::kernels
