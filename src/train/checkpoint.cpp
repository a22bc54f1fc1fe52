#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/log.h"
#include "core/mapped_file.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace dsv3 {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "dsv3-train-checkpoint";
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kConfigFile = "config.json";
constexpr const char* kStateFile = "state.json";
constexpr const char* kLatestFile = "latest";

Status fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Status::errorf("{}: cannot open for fsync: {}", path, std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::errorf("{}: fsync failed: {}", path, std::strerror(errno));
  return Status::ok();
}

// Test hook: DSV3_TEST_KILL_AT_STEP=N[:phase] sends SIGKILL to this process while saving step N,
// at `phase` ("files": some files written into the temporary directory, the default; "rename":
// the checkpoint renamed into place but `latest` not yet updated). Simulates a crash mid-save.
void maybe_kill(int64_t step, const char* phase) {
  const char* env = std::getenv("DSV3_TEST_KILL_AT_STEP");
  if (env == nullptr) return;
  std::string spec(env);
  std::string want_phase = "files";
  if (size_t colon = spec.find(':'); colon != std::string::npos) {
    want_phase = spec.substr(colon + 1);
    spec = spec.substr(0, colon);
  }
  if (std::atoll(spec.c_str()) == step && want_phase == phase) std::raise(SIGKILL);
}

// Step number of a "step-NNNNNN" directory name, or -1.
int64_t step_of(const std::string& name) {
  if (name.size() < 6 || name.compare(0, 5, "step-") != 0) return -1;
  for (size_t i = 5; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return -1;
  return std::atoll(name.c_str() + 5);
}

// Complete checkpoints of a run directory, newest first.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    int64_t s = step_of(e.path().filename().string());
    if (s >= 0 && e.is_directory()) out.emplace_back(s, e.path().string());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

Result<Json> file_entry(const std::string& path) {
  Result<MappedFile> f = MappedFile::open(path);
  DSV3_TRY(f);
  Json e;
  e["bytes"] = f->size();
  e["crc32"] = crc32_update(0, f->data(), f->size());
  return e;
}

std::span<const uint8_t> float_bytes(const float* p, int64_t n) {
  return {reinterpret_cast<const uint8_t*>(p), size_t(n) * sizeof(float)};
}

Status check_tensor(const SafetensorsFile& f, const std::string& name, DType dtype,
                    const std::vector<int64_t>& shape) {
  const TensorInfo* t = f.find(name);
  if (t == nullptr) return Status::errorf("{}: missing tensor '{}'", f.path(), name);
  if (t->dtype != dtype || t->shape != shape)
    return Status::errorf("{}: tensor '{}' is {} {}, expected {} {} (a different model or optimizer setting?)",
                          f.path(), name, dtype_name(t->dtype), shape_str(t->shape), dtype_name(dtype),
                          shape_str(shape));
  return Status::ok();
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) { return fmt::format("step-{:06d}", step); }

Result<std::string> save_checkpoint(const std::string& run_dir, const CheckpointTarget& target,
                                    const TrainState& state, int keep) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) return Status::errorf("{}: cannot create directory: {}", run_dir, ec.message());
  // Leftovers of saves that were killed midway.
  for (const auto& e : fs::directory_iterator(run_dir, ec))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove_all(e.path(), ec);

  const std::string name = checkpoint_dir_name(state.step);
  std::string tmpl = (fs::path(run_dir) / (name + ".tmp-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr)
    return Status::errorf("{}: cannot create a temporary directory: {}", run_dir, std::strerror(errno));
  const std::string tmp = tmpl;
  auto in_tmp = [&](const char* file) { return (fs::path(tmp) / file).string(); };

  // Parameters and router biases.
  std::vector<TensorData> tensors;
  for (const ParamTensor& t : target.params->tensors())
    tensors.push_back({t.name, DType::F32, t.shape, float_bytes(t.data, t.numel)});
  const auto& biases = *target.router_biases;
  for (size_t l = 0; l < biases.size(); ++l)
    tensors.push_back({target.router_bias_names.at(l), DType::F32, {int64_t(biases[l].size())},
                       float_bytes(biases[l].data(), int64_t(biases[l].size()))});
  DSV3_TRY(write_safetensors(in_tmp(kModelFile), tensors, {{"format", "dsv3-train"}}));
  maybe_kill(state.step, "files");

  // Optimizer moments.
  const Optimizer& opt = *target.optimizer;
  std::vector<std::string> files = {kModelFile, kConfigFile};
  if (opt.has_moments()) {
    const DType md = opt.moment_dtype() == MomentDType::BF16 ? DType::BF16 : DType::F32;
    tensors.clear();
    const auto& ts = target.params->tensors();
    for (size_t i = 0; i < ts.size(); ++i)
      for (int which = 0; which < 2; ++which)
        tensors.push_back({ts[i].name + (which == 0 ? ".exp_avg" : ".exp_avg_sq"), md, ts[i].shape,
                           {opt.moment_bytes(i, which), opt.moment_nbytes(i)}});
    DSV3_TRY(write_safetensors(in_tmp(kOptimizerFile), tensors,
                               {{"optimizer", optimizer_kind_name(opt.options().kind)}}));
    files.push_back(kOptimizerFile);
  }
  DSV3_TRY(write_file_atomic(in_tmp(kConfigFile), target.config_json));

  // state.json last, with the size and checksum of every other file.
  Json st;
  st["format"] = kFormat;
  st["version"] = 1;
  st["step"] = state.step;
  st["tokens_seen"] = state.tokens_seen;
  st["optimizer_steps"] = opt.step_count();
  st["loader"] = {{"epoch", state.loader.epoch}, {"position", state.loader.position}};
  st["options"] = state.options;
  for (const std::string& f : files) {
    Result<Json> e = file_entry(in_tmp(f.c_str()));
    DSV3_TRY(e);
    st["files"][f] = *e;
  }
  DSV3_TRY(write_file_atomic(in_tmp(kStateFile), st.dump(2) + "\n"));
  DSV3_TRY(fsync_path(tmp, true));

  // Publish: rename into place (replacing a stale checkpoint of the same step left by a run
  // that was resumed from an older one), make the rename durable, then move `latest`.
  const std::string final_dir = (fs::path(run_dir) / name).string();
  if (fs::exists(final_dir)) {
    const std::string trash = final_dir + ".tmp-old";
    fs::rename(final_dir, trash, ec);
    if (ec) return Status::errorf("{}: cannot replace: {}", final_dir, ec.message());
    fs::remove_all(trash, ec);
  }
  fs::rename(tmp, final_dir, ec);
  if (ec) return Status::errorf("{}: cannot rename to {}: {}", tmp, final_dir, ec.message());
  DSV3_TRY(fsync_path(run_dir, true));
  maybe_kill(state.step, "rename");
  DSV3_TRY(write_file_atomic((fs::path(run_dir) / kLatestFile).string(), name + "\n"));

  if (keep > 0) {
    auto all = list_checkpoints(run_dir);
    for (size_t i = size_t(keep); i < all.size(); ++i)
      if (all[i].second != final_dir) fs::remove_all(all[i].second, ec);
  }
  return final_dir;
}

Result<TrainState> read_checkpoint_state(const std::string& dir) {
  const std::string state_path = (fs::path(dir) / kStateFile).string();
  Result<std::string> text = read_text_file(state_path);
  if (!text.is_ok()) return Status::errorf("{}: incomplete checkpoint ({})", dir, text.message());
  Result<Json> json = parse_json(*text, state_path);
  DSV3_TRY(json);
  JsonObject j(*json, state_path);
  Result<std::string> format = j.get_string("format");
  DSV3_TRY(format);
  if (*format != kFormat) return j.field_error("format", std::string("\"") + kFormat + "\"");
  Result<int64_t> version = j.get_int("version");
  DSV3_TRY(version);
  if (*version != 1) return j.field_error("version", "1");
  TrainState st;
  Result<int64_t> step = j.get_int("step");
  DSV3_TRY(step);
  Result<int64_t> tokens = j.get_int("tokens_seen");
  DSV3_TRY(tokens);
  Result<int64_t> opt_steps = j.get_int("optimizer_steps");
  DSV3_TRY(opt_steps);
  st.step = *step;
  st.tokens_seen = *tokens;
  st.optimizer_steps = *opt_steps;
  Result<std::optional<JsonObject>> loader = j.get_object("loader");
  DSV3_TRY(loader);
  if (!loader->has_value()) return j.missing("loader");
  Result<int64_t> epoch = (*loader)->get_int("epoch");
  DSV3_TRY(epoch);
  Result<int64_t> position = (*loader)->get_int("position");
  DSV3_TRY(position);
  if (*epoch < 0 || *position < 0) return j.field_error("loader", "non-negative epoch and position");
  st.loader = {uint64_t(*epoch), uint64_t(*position)};
  if (const Json* o = j.find("options")) st.options = *o;
  const Json* files = j.find("files");
  if (files == nullptr || !files->is_object() || !files->contains(kModelFile))
    return j.field_error("files", "an object listing model.safetensors");
  for (auto it = files->begin(); it != files->end(); ++it) {
    const std::string& name = it.key();
    if (name.find('/') != std::string::npos) return j.field_error("files", "plain file names");
    JsonObject e(it.value(), state_path, "files." + name);
    Result<int64_t> bytes = e.get_int("bytes");
    DSV3_TRY(bytes);
    Result<int64_t> crc = e.get_int("crc32");
    DSV3_TRY(crc);
    const std::string path = (fs::path(dir) / name).string();
    Result<MappedFile> f = MappedFile::open(path);
    if (!f.is_ok()) return Status::errorf("{}: incomplete checkpoint: {}", dir, f.message());
    if (int64_t(f->size()) != *bytes)
      return Status::errorf("{}: {} bytes, state.json says {} (truncated or replaced)", path, f->size(), *bytes);
    if (crc32_update(0, f->data(), f->size()) != uint32_t(*crc))
      return Status::errorf("{}: CRC-32 mismatch (corrupt file)", path);
  }
  return st;
}

Result<std::string> read_checkpoint_config(const std::string& dir) {
  return read_text_file((fs::path(dir) / kConfigFile).string());
}

Result<TrainState> load_checkpoint(const std::string& dir, const CheckpointTarget& target) {
  Result<TrainState> st = read_checkpoint_state(dir);
  DSV3_TRY(st);
  Result<SafetensorsFile> model = SafetensorsFile::open((fs::path(dir) / kModelFile).string());
  DSV3_TRY(model);
  ParamSet& ps = *target.params;
  auto& biases = *target.router_biases;
  // Validate everything first, so a bad checkpoint leaves the live state untouched.
  for (const ParamTensor& t : ps.tensors()) DSV3_TRY(check_tensor(*model, t.name, DType::F32, t.shape));
  for (size_t l = 0; l < biases.size(); ++l)
    DSV3_TRY(check_tensor(*model, target.router_bias_names.at(l), DType::F32, {int64_t(biases[l].size())}));
  if (model->tensors().size() != ps.tensors().size() + biases.size())
    return Status::errorf("{}: {} tensors, the model has {} (a different model configuration?)", model->path(),
                          model->tensors().size(), ps.tensors().size() + biases.size());
  Optimizer& opt = *target.optimizer;
  std::optional<SafetensorsFile> moments;
  const std::string opt_path = (fs::path(dir) / kOptimizerFile).string();
  if (opt.has_moments()) {
    if (!fs::exists(opt_path))
      return Status::errorf("{}: no optimizer.safetensors (saved by an SGD run?); cannot resume AdamW", dir);
    Result<SafetensorsFile> f = SafetensorsFile::open(opt_path);
    DSV3_TRY(f);
    const DType md = opt.moment_dtype() == MomentDType::BF16 ? DType::BF16 : DType::F32;
    for (const ParamTensor& t : ps.tensors()) {
      DSV3_TRY(check_tensor(*f, t.name + ".exp_avg", md, t.shape));
      DSV3_TRY(check_tensor(*f, t.name + ".exp_avg_sq", md, t.shape));
    }
    moments.emplace(std::move(f.value()));
  }
  for (const ParamTensor& t : ps.tensors()) std::memcpy(t.data, model->find(t.name)->data, size_t(t.numel) * 4);
  for (size_t l = 0; l < biases.size(); ++l)
    std::memcpy(biases[l].data(), model->find(target.router_bias_names[l])->data, biases[l].size() * 4);
  opt.set_step_count(st->optimizer_steps);
  if (moments) {
    for (size_t i = 0; i < ps.tensors().size(); ++i) {
      const std::string& n = ps.tensors()[i].name;
      std::memcpy(opt.moment_bytes(i, 0), moments->find(n + ".exp_avg")->data, opt.moment_nbytes(i));
      std::memcpy(opt.moment_bytes(i, 1), moments->find(n + ".exp_avg_sq")->data, opt.moment_nbytes(i));
    }
  }
  return st;
}

Result<std::string> find_resume_checkpoint(const std::string& path, std::vector<std::string>* notes) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return Status::errorf("{}: not a directory", path);
  if (fs::exists(fs::path(path) / kStateFile)) {
    Result<TrainState> st = read_checkpoint_state(path);
    DSV3_TRY(st);
    return path;
  }
  std::vector<std::string> candidates;
  Result<std::string> latest = read_text_file((fs::path(path) / kLatestFile).string());
  if (latest.is_ok()) {
    std::string name = *latest;
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (step_of(name) >= 0) candidates.push_back((fs::path(path) / name).string());
  } else if (notes) {
    notes->push_back(fmt::format("{}: no `latest` file; looking for the newest valid checkpoint", path));
  }
  for (const auto& [step, dir] : list_checkpoints(path))
    if (candidates.empty() || dir != candidates.front()) candidates.push_back(dir);
  for (const std::string& c : candidates) {
    Result<TrainState> st = read_checkpoint_state(c);
    if (st.is_ok()) return c;
    if (notes) notes->push_back(fmt::format("skipping invalid checkpoint: {}", st.message()));
  }
  return Status::errorf("{}: no valid checkpoint to resume from", path);
}

}  // namespace dsv3
