// NumPy .npy files (format version 1.0/2.0): the exchange format for reference tensors that
// tests and tools compare against. Writing: float32, C order, little-endian, atomically.
// Reading: '<f4' or '<f8', C order, any rank (values widened to double).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace dsv3 {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<double> values;  // numel(shape) values, C order
  bool is_f64 = false;         // stored as '<f8' (else '<f4')

  int64_t numel() const;
  std::vector<float> to_f32() const;
};

// Writes data (numel(shape) floats, C order) as a version 1.0 '<f4' .npy file.
Status write_npy_f32(const std::string& path, std::span<const float> data, std::span<const int64_t> shape);

Result<NpyArray> read_npy(const std::string& path);
// Parses .npy bytes held in memory; `name` is used in errors.
Result<NpyArray> parse_npy(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace dsv3
