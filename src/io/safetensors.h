// safetensors files: a zero-copy reader with full bounds checks, and an atomic writer.
//
// Layout: u64 little-endian N | N bytes of JSON header | data section. The header maps each
// tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data
// section) and may hold "__metadata__": {string: string}. The reader checks everything a
// corrupt or hostile file could get wrong before any tensor is exposed, so a TensorInfo can be
// trusted: its bytes lie inside the file, nbytes == numel · dtype_size, no two tensors overlap.
// Multi-file checkpoints (an index routing names to shards) are in io/checkpoint.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/status.h"

namespace dsv3 {

// One tensor of a safetensors file: a view into the file's mapping (or the caller's buffer).
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // nbytes bytes; alignment is whatever the file gives
  size_t nbytes = 0;
  std::string file;  // path of the file holding it (for error messages)

  int64_t numel() const;
};

// "[2, 3]" — shapes in error messages.
std::string shape_str(std::span<const int64_t> shape);

class SafetensorsFile {
 public:
  // The safetensors reference implementation caps headers at 100 MB; so do we.
  static constexpr uint64_t kMaxHeaderBytes = 100u << 20;

  // Maps and parses `path`.
  static Result<SafetensorsFile> open(const std::string& path);
  // Parses bytes the caller owns (they must outlive the result); `name` is used in errors.
  // Used by the fuzz target and tests.
  static Result<SafetensorsFile> from_memory(std::span<const uint8_t> bytes, const std::string& name);

  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
  // Tensors in data-offset order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  Status parse(const uint8_t* bytes, size_t size);

  MappedFile mapping_;  // empty for from_memory()
  std::string path_;
  size_t size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: `bytes` must hold exactly numel(shape) · dtype_size(dtype) bytes.
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;
};

// Writes one safetensors file atomically. Header keys are sorted; tensor data follows in name
// order; the header is padded with spaces to a multiple of 8 bytes so 8-byte-aligned tensors
// stay aligned. Fails on duplicate names or a size that does not match the shape.
Status write_safetensors(const std::string& path, std::span<const TensorData> tensors,
                         const std::map<std::string, std::string>& metadata = {});

// Writes `tensors` as `n_shards` files DIR/model-0000i-of-0000N.safetensors (contiguous groups
// of near-equal bytes, in the given order) plus DIR/model.safetensors.index.json with
// {"metadata": {"total_size": bytes}, "weight_map": {name: shard}}. DIR must exist.
Status write_sharded_safetensors(const std::string& dir, std::span<const TensorData> tensors,
                                 int n_shards, const std::map<std::string, std::string>& metadata = {});

// Name of shard i (0-based) of n, as Hugging Face spells it: model-00001-of-00003.safetensors.
std::string shard_file_name(int i, int n);

}  // namespace dsv3
