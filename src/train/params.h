// The trainable parameters of a model as one list (style rule 9): every tensor has its Hugging
// Face name, shape, f32 master values and f32 gradient, carved out of two slabs. Load, save,
// zero, the optimizer, all-reduce and checkpoints all iterate this list.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsv3 {

struct ParamTensor {
  std::string name;            // HF name, e.g. "model.layers.0.self_attn.q_a_proj.weight"
  std::vector<int64_t> shape;  // as stored in HF checkpoints ([out, in] for matrices)
  float* data = nullptr;       // f32 master weights
  float* grad = nullptr;       // f32 gradient (accumulated by backward)
  int64_t numel = 0;
  bool weight_decay = false;   // AdamW decay applies to matrices, not to norms or biases
};

class ParamSet {
 public:
  // Declares a tensor; storage is carved when finalize() is called (pointers then stay valid).
  void add(std::string name, std::vector<int64_t> shape, bool weight_decay);
  void finalize();
  bool finalized() const { return data_ != nullptr; }

  std::vector<ParamTensor>& tensors() { return tensors_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  const ParamTensor* find(const std::string& name) const;
  ParamTensor* find(const std::string& name);
  int64_t numel() const { return numel_; }
  float* data() { return data_.get(); }
  float* grad() { return grad_.get(); }
  const float* data() const { return data_.get(); }
  const float* grad() const { return grad_.get(); }
  void zero_grad();

 private:
  std::vector<ParamTensor> tensors_;
  int64_t numel_ = 0;
  std::unique_ptr<float[]> data_, grad_;
};

}  // namespace dsv3
