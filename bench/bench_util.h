// Helpers shared by the micro-benchmarks: seeded inputs and one thread count for dsv3 and for
// the OpenBLAS yardstick (so a comparison runs both on the same number of threads).
#pragma once

#include <cstdint>
#include <vector>

#include "core/parallel_for.h"
#include "core/rng.h"

#ifdef DSV3_HAVE_BLAS
#include <cblas.h>
#endif

namespace dsv3::bench {

inline std::vector<float> random_normals(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.next_normal();
  return v;
}

inline void set_threads(int threads) {
  set_num_threads(threads);
#ifdef DSV3_HAVE_BLAS
  openblas_set_num_threads(threads);
#endif
}

}  // namespace dsv3::bench
