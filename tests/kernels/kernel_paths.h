// Test helpers: run a check on every kernel path this machine can execute (the portable path
// always, the AVX2 and AVX-512 paths when the CPU has them), restoring the previous path afterwards.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "kernels/dispatch.h"

namespace dsv3::kernels::testing {

inline std::vector<KernelPath> available_paths() {
  std::vector<KernelPath> paths{KernelPath::kPortable};
  if (cpu_supports_avx2()) paths.push_back(KernelPath::kAvx2);
  if (cpu_supports_avx512()) paths.push_back(KernelPath::kAvx512);
  return paths;
}

class ScopedKernelPath {
 public:
  explicit ScopedKernelPath(KernelPath path) : saved_(kernel_path()) { set_kernel_path(path); }
  ~ScopedKernelPath() { set_kernel_path(saved_); }
  ScopedKernelPath(const ScopedKernelPath&) = delete;
  ScopedKernelPath& operator=(const ScopedKernelPath&) = delete;

 private:
  KernelPath saved_;
};

// Calls f() once per available path with that path active and a trace naming it.
template <typename F>
void for_each_path(F&& f) {
  for (KernelPath path : available_paths()) {
    SCOPED_TRACE(std::string("kernel path ") + std::string(kernel_path_name(path)));
    ScopedKernelPath scoped(path);
    f(path);
  }
}

}  // namespace dsv3::kernels::testing
