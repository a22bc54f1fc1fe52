#include "io/npy.h"

#include <cstring>
#include <cctype>

#include "core/mapped_file.h"
#include "io/atomic_file.h"

namespace dsv3 {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

// The text of `'key': VALUE` in the header dict: a quoted string, a word, or a (...) tuple.
std::string header_value(const std::string& h, const std::string& key) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t i = h.find(':', k);
  if (i == std::string::npos) return "";
  i = h.find_first_not_of(' ', i + 1);
  if (i == std::string::npos) return "";
  size_t end;
  if (h[i] == '\'') end = h.find('\'', i + 1);
  else if (h[i] == '(') end = h.find(')', i);
  else end = h.find_first_of(",}", i) - 1;
  if (end == std::string::npos || end < i) return "";
  return h.substr(i, end - i + 1);
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> NpyArray::to_f32() const { return std::vector<float>(values.begin(), values.end()); }

Status write_npy_f32(const std::string& path, std::span<const float> data, std::span<const int64_t> shape) {
  int64_t numel = 1;
  std::string dims;
  for (int64_t d : shape) {
    if (d < 0) return Status::errorf("{}: negative dimension in shape", path);
    numel *= d;
    dims += std::to_string(d) + ",";
  }
  if (shape.size() > 1) dims.pop_back();  // "(3,)" for rank 1, "(2,3)" otherwise
  if (numel != int64_t(data.size())) {
    return Status::errorf("{}: {} values given for a shape with {} elements", path, data.size(), numel);
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string prefix(kMagic, 6);
  prefix += '\x01';
  prefix += '\x00';
  prefix += char(header.size() & 0xFF);
  prefix += char(header.size() >> 8);
  AtomicFileWriter w;
  DSV3_TRY(w.open(path));
  DSV3_TRY(w.write(prefix));
  DSV3_TRY(w.write(header));
  DSV3_TRY(w.write(data.data(), data.size_bytes()));  // x86-64 is little-endian, as '<f4' says
  return w.commit();
}

Result<NpyArray> parse_npy(std::span<const uint8_t> bytes, const std::string& name) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0) {
    return Status::errorf("{}: not a .npy file (bad magic)", name);
  }
  uint8_t major = bytes[6];
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = size_t(bytes[8]) | size_t(bytes[9]) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Status::errorf("{}: truncated header", name);
    header_len = size_t(bytes[8]) | size_t(bytes[9]) << 8 | size_t(bytes[10]) << 16 | size_t(bytes[11]) << 24;
    header_start = 12;
  } else {
    return Status::errorf("{}: unsupported .npy version {}", name, major);
  }
  if (header_len > bytes.size() - header_start) return Status::errorf("{}: truncated header", name);
  // Real headers are ~100 bytes.
  if (header_len > 65536) return Status::errorf("{}: header of {} bytes is implausibly large", name, header_len);
  std::string header(reinterpret_cast<const char*>(bytes.data() + header_start), header_len);

  NpyArray a;
  auto descr = header_value(header, "descr");
  if (descr == "'<f4'" || descr == "'f4'" || descr == "'=f4'") {
    a.is_f64 = false;
  } else if (descr == "'<f8'" || descr == "'f8'" || descr == "'=f8'") {
    a.is_f64 = true;
  } else {
    return Status::errorf("{}: only little-endian float32/float64 arrays are supported, got descr {}", name, descr);
  }
  if (header_value(header, "fortran_order") != "False") {
    return Status::errorf("{}: only C-order arrays are supported", name);
  }
  std::string dims = header_value(header, "shape");
  if (dims.size() < 2 || dims.front() != '(' || dims.back() != ')') {
    return Status::errorf("{}: header has no shape tuple", name);
  }
  uint64_t numel = 1;
  for (size_t i = 1; i + 1 < dims.size();) {
    if (dims[i] == ',' || dims[i] == ' ') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < dims.size() && std::isdigit(static_cast<unsigned char>(dims[j]))) ++j;
    if (j == i || j - i > 15) return Status::errorf("{}: bad shape {}", name, dims);
    int64_t d = std::stoll(dims.substr(i, j - i));
    a.shape.push_back(d);
    if (__builtin_mul_overflow(numel, uint64_t(d), &numel)) return Status::errorf("{}: shape too large", name);
    i = j;
  }
  size_t elem = a.is_f64 ? 8 : 4;
  size_t data_start = header_start + header_len;
  uint64_t need = 0;
  if (__builtin_mul_overflow(numel, uint64_t(elem), &need) || need != bytes.size() - data_start) {
    return Status::errorf("{}: data is {} bytes, shape needs {} elements of {} bytes", name,
                          bytes.size() - data_start, numel, elem);
  }
  a.values.resize(numel);
  const uint8_t* p = bytes.data() + data_start;
  for (uint64_t i = 0; i < numel; ++i) {
    if (a.is_f64) {
      std::memcpy(&a.values[i], p + 8 * i, 8);
    } else {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      a.values[i] = f;
    }
  }
  return a;
}

Result<NpyArray> read_npy(const std::string& path) {
  auto f = MappedFile::open(path);
  DSV3_TRY(f);
  return parse_npy(std::span<const uint8_t>(f->data(), f->size()), path);
}

}  // namespace dsv3
