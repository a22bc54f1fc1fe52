// Dispatch and the portable path of the array conversions (convert.h).
#include "kernels/convert.h"

#include "core/numeric.h"
#include "kernels/avx2.h"
#include "kernels/dequant.h"
#include "kernels/dispatch.h"

namespace dsv3::kernels {

void convert_f32_to_bf16(uint16_t* out, const float* in, int64_t n) {
  if (avx2_kernels()) return avx2::convert_f32_to_bf16(out, in, n);
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(in[i]);
}

void convert_bf16_to_f32(float* out, const uint16_t* in, int64_t n) {
  if (avx2_kernels()) return avx2::convert_bf16_to_f32(out, in, n);
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(in[i]);
}

void convert_f16_to_f32(float* out, const uint16_t* in, int64_t n) {
  if (avx2_kernels()) return avx2::convert_f16_to_f32(out, in, n);
  for (int64_t i = 0; i < n; ++i) out[i] = detail::f16_bits_to_f32(in[i]);
}

void convert_e4m3_to_f32(float* out, const uint8_t* in, int64_t n) {
  if (avx2_kernels()) return avx2::convert_e4m3_to_f32(out, in, n);
  const float* table = detail::e4m3_table();
  for (int64_t i = 0; i < n; ++i) out[i] = table[in[i]];
}

void convert_f32_to_e4m3(uint8_t* out, const float* in, int64_t n) {
  if (avx2_kernels()) return avx2::convert_f32_to_e4m3(out, in, n);
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_e4m3(in[i]);
}

void round_f32_to_bf16(float* out, const float* in, int64_t n) {
  if (avx2_kernels()) return avx2::round_f32_to_bf16(out, in, n);
  for (int64_t i = 0; i < n; ++i) out[i] = round_to_bf16(in[i]);
}

float abs_max(const float* x, int64_t n) {
  if (avx2_kernels()) return avx2::abs_max(x, n);
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = abs_max_step(amax, x[i]);
  return amax;
}

void abs_max_into(float* amax, const float* x, int64_t n) {
  if (avx2_kernels()) return avx2::abs_max_into(amax, x, n);
  for (int64_t i = 0; i < n; ++i) amax[i] = abs_max_step(amax[i], x[i]);
}

}  // namespace dsv3::kernels
