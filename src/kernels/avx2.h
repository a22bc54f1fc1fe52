// Entry points of the AVX2+FMA+F16C path, one per dispatched kernel, with the same contracts as
// the public functions they implement (convert.h, matmul.h, gemm.h, membw.h, attention.h, exp_rows.h,
// activation.h). Internal to src/kernels: call them only when avx2_kernels().
#pragma once

#include <cstdint>

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"

namespace dsv3::kernels::avx2 {

void convert_f32_to_bf16(uint16_t* out, const float* in, int64_t n);
void convert_bf16_to_f32(float* out, const uint16_t* in, int64_t n);
void convert_f16_to_f32(float* out, const uint16_t* in, int64_t n);
void convert_e4m3_to_f32(float* out, const uint8_t* in, int64_t n);
void convert_f32_to_e4m3(uint8_t* out, const float* in, int64_t n);
void round_f32_to_bf16(float* out, const float* in, int64_t n);
float abs_max(const float* x, int64_t n);
void abs_max_into(float* amax, const float* x, int64_t n);

// out[0..n) = W[r, c0 .. c0 + n) in f32; NaN codes of E4M3 are not kept (see matmul.h).
void dequantize_run(float* out, const WeightMatrix& w, int64_t r, int64_t c0, int64_t n);

void matmul(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T);
void matmul_t(float* y, int64_t ldy, const float* x, int64_t ldx, const WeightMatrix& w, int64_t T);

void gemm(float* c, int64_t ldc, const float* a, int64_t lda, Op op_a, const float* b, int64_t ldb,
          Op op_b, int64_t M, int64_t N, int64_t K, bool accumulate);

double read_sum(const float* p, int64_t n);

// mla_attention_latent for S <= kDecodeMaxTokens (mla_decode_avx2.cpp).
void mla_attention_decode(float* o_lat, const float* q, const LatentCacheView& cache, int64_t S, int64_t H,
                          int64_t r, int64_t d_r, int64_t start_pos, float scale);

float row_max(const float* x, int64_t n);
double row_sum_exp(const float* x, int64_t n, float scale, float shift);
void row_exp(float* out, const float* x, int64_t n, float scale, float shift, float mul, bool accumulate);
float exp_f32(float x);

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

}  // namespace dsv3::kernels::avx2
