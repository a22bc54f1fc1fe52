#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "io/atomic_file.h"
#include "io/json.h"

namespace fs = std::filesystem;

namespace dsv3 {

namespace {

// Shard names come from a file we do not trust: plain file names only, no paths.
bool is_plain_file_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos && s.find('\0') == std::string::npos;
}

}  // namespace

const TensorInfo* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [name, info] : by_name_) out.emplace_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Checkpoint::describe(std::string_view name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) return fmt::format("'{}' (not in {})", name, root_);
  return fmt::format("'{}' in {}", name, t->file);
}

uint64_t Checkpoint::total_file_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f->file_size();
  return n;
}

Result<Checkpoint> Checkpoint::open(const std::string& dir_or_file) {
  Checkpoint ck;
  ck.root_ = dir_or_file;
  std::error_code ec;
  std::vector<std::string> shard_paths;
  std::map<std::string, std::string> routed;  // tensor -> shard path (index only)
  bool indexed = false;

  if (!fs::exists(dir_or_file, ec)) return Status::errorf("{}: no such file or directory", dir_or_file);
  if (!fs::is_directory(dir_or_file, ec)) {
    shard_paths.push_back(dir_or_file);
  } else if (fs::path index_path = fs::path(dir_or_file) / kIndexFile; fs::exists(index_path, ec)) {
    indexed = true;
    std::string src = index_path.string();
    auto text = read_text_file(src);
    DSV3_TRY(text);
    auto j = parse_json(text.value(), src);
    DSV3_TRY(j);
    JsonObject root(j.value(), src);
    if (!j->is_object()) return Status::errorf("{}: not a JSON object", src);
    const Json* wm = root.find("weight_map");
    if (wm == nullptr) return root.missing("weight_map");
    if (!wm->is_object()) return root.field_error("weight_map", "an object {tensor: shard file}");
    std::map<std::string, int> seen;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string() || !is_plain_file_name(it.value().get<std::string>())) {
        return Status::errorf("{}: weight_map['{}'] must be a shard file name, got {}", src, it.key(),
                              json_excerpt(it.value()));
      }
      std::string shard = (fs::path(dir_or_file) / it.value().get<std::string>()).string();
      routed[it.key()] = shard;
      if (seen.emplace(shard, 0).second) shard_paths.push_back(shard);
    }
    std::sort(shard_paths.begin(), shard_paths.end());
  } else if (fs::path single = fs::path(dir_or_file) / "model.safetensors"; fs::exists(single, ec)) {
    shard_paths.push_back(single.string());
  } else {
    for (const auto& e : fs::directory_iterator(dir_or_file, ec)) {
      if (e.path().extension() == ".safetensors") shard_paths.push_back(e.path().string());
    }
    if (ec) return Status::errorf("{}: cannot list directory: {}", dir_or_file, ec.message());
    std::sort(shard_paths.begin(), shard_paths.end());
    if (shard_paths.empty()) {
      return Status::errorf("{}: no {} and no *.safetensors files", dir_or_file, kIndexFile);
    }
  }

  for (const std::string& path : shard_paths) {
    if (indexed && !fs::exists(path, ec)) {
      return Status::errorf("{}: shard {} is listed in {} but does not exist", dir_or_file, path, kIndexFile);
    }
    auto f = SafetensorsFile::open(path);
    DSV3_TRY(f);
    ck.files_.push_back(std::make_unique<SafetensorsFile>(std::move(f.value())));
  }
  for (const auto& f : ck.files_) {
    for (const TensorInfo& t : f->tensors()) {
      if (indexed) {
        auto it = routed.find(t.name);
        if (it == routed.end()) {
          return Status::errorf("{}: tensor '{}' is not in {}", f->path(), t.name, kIndexFile);
        }
        if (it->second != f->path()) {
          return Status::errorf("{}: tensor '{}' is routed to {} by {}", f->path(), t.name, it->second, kIndexFile);
        }
      }
      auto [pos, inserted] = ck.by_name_.emplace(std::string_view(t.name), &t);
      if (!inserted) {
        return Status::errorf("{}: tensor '{}' is also in {}", f->path(), t.name, pos->second->file);
      }
    }
  }
  if (indexed) {
    for (const auto& [name, shard] : routed) {
      if (ck.find(name) == nullptr) {
        return Status::errorf("{}: tensor '{}' is routed here by {} but the file does not contain it", shard, name,
                              kIndexFile);
      }
    }
  }
  return ck;
}

}  // namespace dsv3
