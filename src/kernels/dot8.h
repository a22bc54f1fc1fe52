// The portable paths' dot product: eight partial sums in a fixed order, a shape the compiler
// vectorizes without reassociating one sum, so the result depends only on the inputs.
// Baseline target only: include it from portable code, never inside an AVX2 pragma region.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

inline float dot8(const float* a, const float* b, int64_t n) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  }
  for (int j = 0; i < n; ++i, ++j) s[j] += a[i] * b[i];
  return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

}  // namespace dsv3::kernels
