// libFuzzer target: arbitrary bytes as a safetensors file. Parsing must never crash, and every
// tensor it accepts must lie inside the input (touching its first and last byte proves it under
// ASan).
#include <cstddef>
#include <cstdint>

#include "core/check.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = dsv3::SafetensorsFile::from_memory(std::span<const uint8_t>(data, size), "fuzz.safetensors");
  if (!f.is_ok()) return 0;
  unsigned sum = 0;
  for (const dsv3::TensorInfo& t : f->tensors()) {
    DSV3_CHECK(t.nbytes == size_t(t.numel()) * dsv3::dtype_size(t.dtype), "size of {}", t.name);
    DSV3_CHECK(f->find(t.name) == &t, "lookup of {}", t.name);
    if (t.nbytes > 0) {
      DSV3_CHECK(t.data >= data && t.data + t.nbytes <= data + size, "bounds of {}", t.name);
      sum += t.data[0] + t.data[t.nbytes - 1];
    }
  }
  return int(sum & 0);
}
