// The one wrapper over OpenMP. Work is split over OUTPUTS with a static partition, never a
// reduction across threads, so results are identical bit for bit for a given thread count
// (and, where each output is computed by one thread in a fixed order, for any thread count).
// Nested calls run serially inside the caller's thread.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace dsv3 {

inline int num_threads() { return omp_get_max_threads(); }
inline void set_num_threads(int n) { omp_set_num_threads(std::max(1, n)); }

// Calls f(begin, end) on contiguous, near-equal chunks of [0, n): one chunk per thread.
template <typename F>
void parallel_chunks(int64_t n, F&& f) {
  if (n <= 0) return;
  int nt = omp_in_parallel() ? 1 : int(std::min<int64_t>(num_threads(), n));
  if (nt <= 1) {
    f(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int ith = omp_get_thread_num();
    int64_t begin = n * ith / nt, end = n * (ith + 1) / nt;
    if (begin < end) f(begin, end);
  }
}

// Calls f(i) for every i in [0, n), statically partitioned.
template <typename F>
void parallel_for(int64_t n, F&& f) {
  parallel_chunks(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i);
  });
}

}  // namespace dsv3
