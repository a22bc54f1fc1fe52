#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "io/atomic_file.h"
#include "io/json.h"

namespace dsv3 {

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // bounded: validated against nbytes when parsed
  return n;
}

std::string shape_str(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

// *out = a * b; true on overflow. Element counts are kept within int64 (TensorInfo::numel).
bool mul_overflow(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out) || *out > uint64_t(INT64_MAX);
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  DSV3_TRY(mapped);
  SafetensorsFile f;
  f.mapping_ = std::move(mapped.value());
  f.path_ = path;
  DSV3_TRY(f.parse(f.mapping_.data(), f.mapping_.size()));
  return f;
}

Result<SafetensorsFile> SafetensorsFile::from_memory(std::span<const uint8_t> bytes, const std::string& name) {
  SafetensorsFile f;
  f.path_ = name;
  DSV3_TRY(f.parse(bytes.data(), bytes.size()));
  return f;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Status SafetensorsFile::parse(const uint8_t* bytes, size_t size) {
  size_ = size;
  const std::string& p = path_;
  if (size < 8) return Status::errorf("{}: file is {} bytes, too short for a safetensors header", p, size);
  uint64_t n = read_u64_le(bytes);
  if (n > size - 8) {
    return Status::errorf("{}: header length {} exceeds the file size ({} bytes): truncated or not a safetensors file",
                          p, n, size);
  }
  if (n > kMaxHeaderBytes) return Status::errorf("{}: header length {} exceeds the {} byte limit", p, n, kMaxHeaderBytes);
  if (n < 2) return Status::errorf("{}: header length {} is too short for a JSON object", p, n);
  std::string_view text(reinterpret_cast<const char*>(bytes + 8), size_t(n));
  auto parsed = parse_json(text, p + " (header)");
  DSV3_TRY(parsed);
  const Json& header = parsed.value();
  if (!header.is_object()) return Status::errorf("{}: header is not a JSON object", p);

  const uint8_t* data = bytes + 8 + n;
  const uint64_t data_size = size - 8 - n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return Status::errorf("{}: __metadata__ must be an object of strings", p);
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          return Status::errorf("{}: __metadata__ value of '{}' must be a string, got {}", p, m.key(),
                                json_excerpt(m.value()));
        }
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    std::string where = fmt::format("{}: tensor '{}'", p, name);
    if (name.empty()) return Status::errorf("{}: a tensor has an empty name", p);
    if (!entry.is_object()) return Status::errorf("{}: entry must be an object, got {}", where, json_excerpt(entry));
    TensorInfo t;
    t.name = name;
    t.file = p;

    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) return Status::errorf("{}: missing or non-string 'dtype'", where);
    auto dtype = dtype_from_name(dt->get<std::string>());
    if (!dtype) return Status::errorf("{}: unsupported dtype {}", where, json_excerpt(*dt));
    t.dtype = *dtype;

    auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) return Status::errorf("{}: missing or non-array 'shape'", where);
    uint64_t numel = 1;
    bool overflow = false;
    for (const Json& d : *sh) {
      auto v = json_as_int(d);
      if (!v || *v < 0 || !d.is_number_integer()) {
        return Status::errorf("{}: shape {} must be an array of non-negative integers", where, json_excerpt(*sh));
      }
      t.shape.push_back(*v);
      overflow = overflow || mul_overflow(numel, uint64_t(*v), &numel);
    }

    auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2) {
      return Status::errorf("{}: 'data_offsets' must be [begin, end]", where);
    }
    auto b = json_as_int((*off)[0]), e = json_as_int((*off)[1]);
    if (!b || !e || *b < 0 || *e < 0 || !(*off)[0].is_number_integer() || !(*off)[1].is_number_integer()) {
      return Status::errorf("{}: 'data_offsets' {} must be two non-negative integers", where, json_excerpt(*off));
    }
    if (*b > *e) return Status::errorf("{}: data_offsets [{}, {}] has begin > end", where, *b, *e);
    if (uint64_t(*e) > data_size) {
      return Status::errorf("{}: data_offsets [{}, {}] end beyond the data section ({} bytes): file truncated?",
                            where, *b, *e, data_size);
    }
    uint64_t want = 0;
    if (overflow || mul_overflow(numel, dtype_size(t.dtype), &want)) {
      return Status::errorf("{}: shape {} is too large", where, shape_str(t.shape));
    }
    uint64_t got = uint64_t(*e - *b);
    if (want != got) {
      return Status::errorf("{}: data_offsets [{}, {}] hold {} bytes but shape {} of {} needs {}", where, *b, *e,
                            got, shape_str(t.shape), dtype_name(t.dtype), want);
    }
    t.data = data + *b;
    t.nbytes = size_t(got);
    tensors_.push_back(std::move(t));
  }

  std::sort(tensors_.begin(), tensors_.end(), [&](const TensorInfo& x, const TensorInfo& y) {
    return x.data != y.data ? x.data < y.data : x.nbytes < y.nbytes;
  });
  const TensorInfo* prev = nullptr;  // the non-empty tensor reaching furthest so far
  for (const TensorInfo& t : tensors_) {
    if (t.nbytes == 0) continue;
    if (prev != nullptr && t.data < prev->data + prev->nbytes) {
      return Status::errorf("{}: tensors '{}' and '{}' overlap in the data section", p, prev->name, t.name);
    }
    prev = &t;
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return Status::ok();
}

// ---- writing ----

namespace {

Status check_tensor(const TensorData& t) {
  uint64_t numel = 1;
  for (int64_t d : t.shape) {
    if (d < 0 || mul_overflow(numel, uint64_t(d), &numel)) {
      return Status::errorf("tensor '{}': invalid shape {}", t.name, shape_str(t.shape));
    }
  }
  if (numel * dtype_size(t.dtype) != t.bytes.size()) {
    return Status::errorf("tensor '{}': {} bytes given for shape {} of {}", t.name, t.bytes.size(),
                          shape_str(t.shape), dtype_name(t.dtype));
  }
  if (t.name.empty() || t.name == "__metadata__") return Status::errorf("invalid tensor name '{}'", t.name);
  return Status::ok();
}

}  // namespace

Status write_safetensors(const std::string& path, std::span<const TensorData> tensors,
                         const std::map<std::string, std::string>& metadata) {
  // Data order as the reference writer does it: wider dtypes first, then by name, so that
  // every tensor starts at a multiple of its element size (the header is padded to 8).
  std::vector<const TensorData*> order;
  for (const TensorData& t : tensors) {
    DSV3_TRY(check_tensor(t).with_context(path));
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const TensorData* a, const TensorData* b) {
    size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorData* t : order) {
    if (header.contains(t->name)) return Status::errorf("{}: duplicate tensor name '{}'", path, t->name);
    header[t->name] = {{"dtype", std::string(dtype_name(t->dtype))},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->bytes.size()}}};
    offset += t->bytes.size();
  }
  std::string text = header.dump(-1, ' ', false, Json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));

  AtomicFileWriter w;
  DSV3_TRY(w.open(path));
  DSV3_TRY(w.write(len, 8));
  DSV3_TRY(w.write(text));
  for (const TensorData* t : order) DSV3_TRY(w.write(t->bytes.data(), t->bytes.size()));
  return w.commit();
}

std::string shard_file_name(int i, int n) { return fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, n); }

Status write_sharded_safetensors(const std::string& dir, std::span<const TensorData> tensors, int n_shards,
                                 const std::map<std::string, std::string>& metadata) {
  if (n_shards < 1) return Status::errorf("{}: shard count must be >= 1, got {}", dir, n_shards);
  uint64_t total = 0;
  for (const TensorData& t : tensors) total += t.bytes.size();
  Json weight_map = Json::object();
  size_t begin = 0;
  uint64_t done = 0;
  for (int s = 0; s < n_shards; ++s) {
    // Shard s takes tensors until the running total reaches (s+1)/n of all bytes.
    uint64_t target = total * uint64_t(s + 1) / uint64_t(n_shards);
    size_t end = begin;
    while (end < tensors.size() && (s == n_shards - 1 || done + tensors[end].bytes.size() <= target || end == begin)) {
      done += tensors[end].bytes.size();
      ++end;
    }
    std::string name = shard_file_name(s, n_shards);
    for (size_t i = begin; i < end; ++i) weight_map[tensors[i].name] = name;
    DSV3_TRY(write_safetensors((std::filesystem::path(dir) / name).string(), tensors.subspan(begin, end - begin),
                               metadata));
    begin = end;
  }
  Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  return write_file_atomic((std::filesystem::path(dir) / "model.safetensors.index.json").string(),
                           index.dump(2) + "\n");
}

}  // namespace dsv3
