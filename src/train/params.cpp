#include "train/params.h"

#include <algorithm>
#include <numeric>

#include "core/check.h"

namespace dsv3 {

void ParamSet::add(std::string name, std::vector<int64_t> shape, bool weight_decay) {
  DSV3_CHECK(!finalized(), "ParamSet::add after finalize ({})", name);
  ParamTensor t;
  t.numel = std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<int64_t>());
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.weight_decay = weight_decay;
  numel_ += t.numel;
  tensors_.push_back(std::move(t));
}

void ParamSet::finalize() {
  DSV3_CHECK(!finalized(), "ParamSet finalized twice");
  data_.reset(new float[size_t(std::max<int64_t>(numel_, 1))]());
  grad_.reset(new float[size_t(std::max<int64_t>(numel_, 1))]());
  int64_t off = 0;
  for (auto& t : tensors_) {
    t.data = data_.get() + off;
    t.grad = grad_.get() + off;
    off += t.numel;
  }
}

const ParamTensor* ParamSet::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

ParamTensor* ParamSet::find(const std::string& name) {
  for (auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void ParamSet::zero_grad() { std::fill(grad_.get(), grad_.get() + numel_, 0.0f); }

}  // namespace dsv3
