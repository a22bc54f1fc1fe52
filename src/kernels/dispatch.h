// Which implementation of the kernels runs: the portable C++ path (any x86-64-v2 CPU), the
// AVX2+FMA+F16C path, or that path with AVX-512 where a kernel has a wider twin (today the FP32
// GEMM micro-kernel, which sums in the same order and so gives bitwise the same results). The
// choice is made once, at first use: the widest the CPU supports, unless the environment variable
// DSV3_KERNELS=portable or DSV3_KERNELS=avx2 asks for a narrower one.
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

enum class KernelPath : uint8_t { kPortable, kAvx2, kAvx512 };

// True when this CPU (and OS) can run the AVX2 path: AVX2, FMA and F16C.
bool cpu_supports_avx2();
// True when it can also run AVX-512F (and the OS saves the ZMM state).
bool cpu_supports_avx512();

// The path every dispatched kernel takes now.
KernelPath kernel_path();
// Whether the AVX2 kernels run (on the AVX2 and the AVX-512 paths alike).
inline bool avx2_kernels() { return kernel_path() != KernelPath::kPortable; }

// Forces a path. Asking for a path the CPU lacks is a programmer error (checked).
void set_kernel_path(KernelPath path);

std::string_view kernel_path_name(KernelPath path);

}  // namespace dsv3::kernels
