// Random weight matrices in every storage type matmul accepts, for kernel tests and benchmarks.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/numeric.h"
#include "core/rng.h"
#include "kernels/matmul.h"

namespace dsv3::kernels::testing {

// Owns the bytes (and FP8 block scales) of a (rows, cols) matrix; view() is the WeightMatrix.
struct OwnedWeights {
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> data;
  std::vector<float> scales;  // (ceil(rows / 128), ceil(cols / 128)), F8_E4M3 only

  WeightMatrix view() const {
    WeightMatrix w;
    w.data = data.data();
    w.dtype = dtype;
    w.rows = rows;
    w.cols = cols;
    w.scale_inv = dtype == DType::F8_E4M3 ? scales.data() : nullptr;
    return w;
  }
};

// Entries ~ N(0, 1) in the storage type; FP8 codes uniform over the 254 finite codes with block
// scales spread over 2^-7 .. 2^-2 (so blocks differ visibly).
inline OwnedWeights random_weights(DType dtype, int64_t rows, int64_t cols, uint64_t seed) {
  OwnedWeights w;
  w.dtype = dtype;
  w.rows = rows;
  w.cols = cols;
  w.data.resize(size_t(rows * cols) * dtype_size(dtype) + 1);
  Rng rng(seed);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = rng.next_normal();
    switch (dtype) {
      case DType::F32: std::memcpy(w.data.data() + 4 * i, &v, 4); break;
      case DType::BF16: {
        const uint16_t b = f32_to_bf16(v);
        std::memcpy(w.data.data() + 2 * i, &b, 2);
        break;
      }
      case DType::F16: {
        const uint16_t h = f32_to_f16(v);
        std::memcpy(w.data.data() + 2 * i, &h, 2);
        break;
      }
      case DType::F8_E4M3: {
        uint8_t c = uint8_t(rng.next_bits());
        if ((c & 0x7F) == 0x7F) c ^= 0x01;  // NaN codes never occur in valid checkpoints
        w.data[size_t(i)] = c;
        break;
      }
      default: break;
    }
  }
  if (dtype == DType::F8_E4M3) {
    const int64_t sr = (rows + kFp8Block - 1) / kFp8Block, sc = (cols + kFp8Block - 1) / kFp8Block;
    w.scales.resize(size_t(sr * sc));
    for (float& s : w.scales) s = std::ldexp(0.5f + rng.next_uniform(), -7 + int(rng.next_bits() % 6));
  }
  return w;
}

inline std::vector<float> random_floats(int64_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = scale * rng.next_normal();
  return v;
}

}  // namespace dsv3::kernels::testing
