// The machine's read bandwidth: the bound that memory-bound kernels (decode matmul) are measured
// against. Used by bench/membw_bench.cpp and `dsv3 bench`.
#pragma once

#include <cstdint>

namespace dsv3::kernels {

// Sum of p[0..n) (every byte loaded once, in 32-byte vectors on the AVX2 path). Single-threaded.
double read_sum(const float* p, int64_t n);

struct BandwidthResult {
  double gb_per_s = 0.0;  // 1e9 bytes per second, best pass
  double seconds = 0.0;   // time of the best pass
  double checksum = 0.0;  // keeps the reads observable
};

// Allocates `bytes` (rounded down to whole 64-byte lines), lets each of `threads` threads fill and
// then repeatedly sum its own contiguous part, and reports the best of `passes` passes.
// `threads` is capped by the current thread count (core/parallel_for.h).
BandwidthResult measure_read_bandwidth(int64_t bytes, int threads, int passes);

}  // namespace dsv3::kernels
