#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dsv3 {

namespace {
Status sys_error(const std::string& what, const std::string& path) {
  return Status::errorf("{}: {}: {}", path, what, std::strerror(errno));
}
}  // namespace

AtomicFileWriter::~AtomicFileWriter() {
  if (f_ != nullptr) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

Status AtomicFileWriter::open(const std::string& path) {
  path_ = path;
  tmp_ = path + ".tmp";
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (f_ == nullptr) return sys_error("cannot create", tmp_);
  return Status::ok();
}

Status AtomicFileWriter::write(const void* data, size_t n) {
  if (f_ == nullptr) return Status::errorf("{}: write after close", tmp_);
  if (n > 0 && std::fwrite(data, 1, n, f_) != n) return sys_error("write failed", tmp_);
  return Status::ok();
}

Status AtomicFileWriter::commit() {
  if (f_ == nullptr) return Status::errorf("{}: commit without open", path_);
  bool ok = std::fflush(f_) == 0 && fsync(fileno(f_)) == 0;
  Status st = ok ? Status::ok() : sys_error("flush failed", tmp_);
  if (std::fclose(f_) != 0 && st.is_ok()) st = sys_error("close failed", tmp_);
  f_ = nullptr;
  if (st.is_ok() && std::rename(tmp_.c_str(), path_.c_str()) != 0) st = sys_error("rename failed", path_);
  if (!st.is_ok()) {
    std::remove(tmp_.c_str());
    return st;
  }
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    ::close(fd);
  }
  return Status::ok();
}

Status write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFileWriter w;
  DSV3_TRY(w.open(path));
  DSV3_TRY(w.write(contents));
  return w.commit();
}

Result<std::string> read_text_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Status::errorf("{}: is a directory", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::errorf("{}: read failed", path);
  return ss.str();
}

}  // namespace dsv3
