// Which implementation of the kernels runs: the portable C++ path (any x86-64-v2 CPU) or the
// AVX2+FMA+F16C path. The choice is made once, at first use: AVX2 when the CPU supports all three
// extensions, unless the environment variable DSV3_KERNELS=portable forces the portable path.
// Tests (and benchmarks) switch paths with set_kernel_path(); switching while another thread is
// inside a kernel is not supported.
//
// How the AVX2 code is compiled: the global flags target x86-64-v2; each src/kernels/*_avx2.cpp
// (and simd_avx2.h) wraps its code in `#pragma GCC push_options / target("avx2,fma,f16c")`, which
// gives exactly those functions (and lambdas inside them) the wider instruction set. Shared inline
// functions from other headers keep the baseline target, so no AVX2 instruction can leak into the
// portable path through a COMDAT copy the linker happens to pick.
#pragma once

#include <cstdint>
#include <string_view>

namespace dsv3::kernels {

enum class KernelPath : uint8_t { kPortable, kAvx2 };

// True when this CPU (and OS) can run the AVX2 path: AVX2, FMA and F16C.
bool cpu_supports_avx2();

// The path every dispatched kernel takes now.
KernelPath kernel_path();

// Forces a path. Asking for kAvx2 on a CPU without it is a programmer error (checked).
void set_kernel_path(KernelPath path);

std::string_view kernel_path_name(KernelPath path);

}  // namespace dsv3::kernels
