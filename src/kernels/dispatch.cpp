#include "kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include "core/check.h"

namespace dsv3::kernels {
namespace {

KernelPath initial_path() {
  const char* env = std::getenv("DSV3_KERNELS");
  if (env != nullptr && std::string_view(env) == "portable") return KernelPath::kPortable;
  return cpu_supports_avx2() ? KernelPath::kAvx2 : KernelPath::kPortable;
}

std::atomic<KernelPath>& current_path() {
  static std::atomic<KernelPath> path{initial_path()};
  return path;
}

}  // namespace

bool cpu_supports_avx2() {
  // __builtin_cpu_supports also requires the OS to save the YMM state (XGETBV), as AVX needs.
  static const bool supported =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return supported;
}

KernelPath kernel_path() { return current_path().load(std::memory_order_relaxed); }

void set_kernel_path(KernelPath path) {
  DSV3_CHECK(path != KernelPath::kAvx2 || cpu_supports_avx2(),
             "the AVX2 kernel path was requested but this CPU lacks AVX2/FMA/F16C");
  current_path().store(path, std::memory_order_relaxed);
}

std::string_view kernel_path_name(KernelPath path) {
  return path == KernelPath::kAvx2 ? "avx2" : "portable";
}

}  // namespace dsv3::kernels
