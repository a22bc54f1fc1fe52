#include "io/npy.h"

#include <cstring>
#include <regex>

#include "core/mapped_file.h"
#include "io/atomic_file.h"

namespace dsv3 {

namespace {
constexpr char kMagic[] = "\x93NUMPY";
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
  // Real headers are ~100 bytes; the cap keeps std::regex (recursive) away from huge inputs.
  if (header_len > 65536) return Status::errorf("{}: header of {} bytes is implausibly large", name, header_len);
  std::string header(reinterpret_cast<const char*>(bytes.data() + header_start), header_len);

  NpyArray a;
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([<>|=]?)(f4|f8)')"))) {
    return Status::errorf("{}: only float32/float64 arrays are supported (header: {})", name, header);
  }
  if (m[1] == ">") return Status::errorf("{}: big-endian arrays are not supported", name);
  a.is_f64 = m[2] == "f8";
  if (!std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")) || m[1] == "True") {
    return Status::errorf("{}: only C-order arrays are supported", name);
  }
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) {
    return Status::errorf("{}: header has no shape", name);
  }
  std::string dims = m[1];
  std::regex num(R"(\d+)");
  uint64_t numel = 1;
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it) {
    std::string s = it->str();
    if (s.size() > 15) return Status::errorf("{}: dimension {} too large", name, s);
    int64_t d = std::stoll(s);
    a.shape.push_back(d);
    if (__builtin_mul_overflow(numel, uint64_t(d), &numel)) return Status::errorf("{}: shape too large", name);
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
