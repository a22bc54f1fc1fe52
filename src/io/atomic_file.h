// Atomic file replacement: bytes go to PATH.tmp, which is fsync'ed and renamed over PATH,
// then the directory is fsync'ed. Readers see either the old file or the complete new one,
// never a torn write, even if the process or the machine dies midway.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/status.h"

namespace dsv3 {

class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();  // an uncommitted temporary is removed
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Status open(const std::string& path);
  Status write(const void* data, size_t n);
  Status write(std::string_view s) { return write(s.data(), s.size()); }
  // Flushes, fsyncs, renames PATH.tmp to PATH and fsyncs the directory.
  Status commit();

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
};

// Writes `contents` to `path` atomically.
Status write_file_atomic(const std::string& path, std::string_view contents);

// Reads a whole (small) file into a string.
Result<std::string> read_text_file(const std::string& path);

}  // namespace dsv3
