// Checkpoint: the tensors of a model stored as one or more safetensors files, the way Hugging
// Face repositories ship them. Opens
//   - a directory with model.safetensors.index.json (weight_map routes each tensor to a shard;
//     every shard named must exist and hold exactly the tensors the index gives it),
//   - a directory with model.safetensors, or without an index all *.safetensors files in it
//     (sorted by name; a tensor name may occur only once),
//   - a single .safetensors file.
// All files stay memory-mapped for the Checkpoint's lifetime; TensorInfo pointers stay valid
// when the Checkpoint is moved.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"

namespace dsv3 {

class Checkpoint {
 public:
  static constexpr const char* kIndexFile = "model.safetensors.index.json";

  static Result<Checkpoint> open(const std::string& dir_or_file);

  const TensorInfo* find(std::string_view name) const;
  std::vector<std::string> names() const;  // sorted
  size_t size() const { return by_name_.size(); }
  // "'NAME' in FILE" (or "'NAME' (not in DIR)") for error messages.
  std::string describe(std::string_view name) const;
  const std::string& root() const { return root_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  uint64_t total_file_bytes() const;

 private:
  std::string root_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string_view, const TensorInfo*> by_name_;  // keys view TensorInfo::name
};

}  // namespace dsv3
