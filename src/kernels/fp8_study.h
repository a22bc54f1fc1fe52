// The accumulation-precision study of V3 §3.3.2: how far a GEMM whose tensor-core accumulator keeps
// only `mantissa_bits` bits drifts from FP64, with and without promotion to f32 every N_C = 128.
// Used by `dsv3 fp8 study` and by the tests (same code, same numbers).
//
// Setting (the report does not give its own): x (M, K) and W (N, K) with i.i.d. entries from
// `dist`, quantized as in training (x 1x128, W 128x128 blocks), C = x · Wᵀ. Errors are measured
// against the FP64 product of the SAME quantized operands, so only accumulation error is counted.
#pragma once

#include <cstdint>

#include "kernels/fp8_gemm.h"

namespace dsv3::kernels {

enum class StudyDist : uint8_t {
  kNormal,   // N(0, 1): outputs ~ N(0, K); per-element relative error is large where |C| is small
  kUniform,  // U[0, 1): all products positive, |C| grows like K/4 (the accumulator-swamping case)
};

struct Fp8StudyOptions {
  int64_t M = 16, N = 16;  // outputs per K: M·N dot products
  int mantissa_bits = 14;
  bool align_with_accumulator = false;
  StudyDist dist = StudyDist::kNormal;
  uint64_t seed = 0;
};

struct AccError {
  double max_rel = 0;   // max_i |C_i - R_i| / |R_i|  (outputs with R_i = 0 skipped)
  double mean_rel = 0;  // mean of the same
  double frob_rel = 0;  // ‖C - R‖ / ‖R‖
};

struct Fp8StudyRow {
  int64_t K = 0;
  int mantissa_bits = 0;
  AccError unpromoted, promoted;
};

Fp8StudyRow fp8_accumulation_study(int64_t K, const Fp8StudyOptions& opt);

}  // namespace dsv3::kernels
