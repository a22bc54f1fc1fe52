// Growable scratch buffers for forward passes: each buffer grows to the largest size a call
// has needed and is then reused, so steady-state decode steps allocate nothing.
#pragma once

#include <cstdint>
#include <vector>

namespace dsv3 {

class Scratch {
 public:
  float* get(int64_t n) {
    if (int64_t(buf_.size()) < n) buf_.resize(size_t(n));
    return buf_.data();
  }

 private:
  std::vector<float> buf_;
};

}  // namespace dsv3
