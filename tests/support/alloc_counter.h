// Counts heap allocations made through operator new while a AllocationCounter is alive (the
// test binary replaces the global operator new in alloc_counter.cpp). Used by the tests that
// prove decode steps and decode-shaped kernels allocate nothing.
#pragma once

#include <cstdint>

namespace dsv3::testing {

class AllocationCounter {
 public:
  AllocationCounter();
  ~AllocationCounter();
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;
  int64_t count() const;
};

}  // namespace dsv3::testing
