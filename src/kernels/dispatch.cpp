#include "kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include "core/check.h"

namespace dsv3::kernels {
namespace {

KernelPath initial_path() {
  const char* env = std::getenv("DSV3_KERNELS");
  const std::string_view want = env != nullptr ? env : "";
  if (want == "portable" || !cpu_supports_avx2()) return KernelPath::kPortable;
  if (want == "avx2" || !cpu_supports_avx512()) return KernelPath::kAvx2;
  return KernelPath::kAvx512;
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

bool cpu_supports_avx512() {
  // Also checks that the OS saves the opmask and ZMM state (XGETBV), as AVX-512 needs.
  static const bool supported = cpu_supports_avx2() && __builtin_cpu_supports("avx512f");
  return supported;
}

KernelPath kernel_path() { return current_path().load(std::memory_order_relaxed); }

void set_kernel_path(KernelPath path) {
  DSV3_CHECK(path != KernelPath::kAvx2 || cpu_supports_avx2(),
             "the AVX2 kernel path was requested but this CPU lacks AVX2/FMA/F16C");
  DSV3_CHECK(path != KernelPath::kAvx512 || cpu_supports_avx512(),
             "the AVX-512 kernel path was requested but this CPU lacks AVX-512F");
  current_path().store(path, std::memory_order_relaxed);
}

std::string_view kernel_path_name(KernelPath path) {
  switch (path) {
    case KernelPath::kAvx512: return "avx512";
    case KernelPath::kAvx2: return "avx2";
    case KernelPath::kPortable: break;
  }
  return "portable";
}

}  // namespace dsv3::kernels
