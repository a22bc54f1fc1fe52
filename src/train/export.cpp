#include "train/export.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/numeric.h"
#include "core/parallel_for.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/loader.h"
#include "train/checkpoint.h"

namespace dsv3 {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kBlock = 128;

struct OutTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// The training checkpoint's name for an exported tensor: MTP copies come from the shared ones.
std::string source_name(const TensorSpec& s, const ModelConfig& cfg) {
  if (s.layer >= cfg.n_layers) {
    const std::string pre = "model.layers." + std::to_string(s.layer) + ".";
    if (s.name == pre + "embed_tokens.weight") return "model.embed_tokens.weight";
    if (s.name == pre + "shared_head.head.weight") return "lm_head.weight";
  }
  return s.name;
}

}  // namespace

Result<ExportDType> parse_export_dtype(const std::string& name) {
  if (name == "f32") return ExportDType::F32;
  if (name == "bf16") return ExportDType::BF16;
  if (name == "fp8") return ExportDType::FP8;
  return Status::errorf("unknown export dtype '{}' (expected bf16, fp8 or f32)", name);
}

void quantize_e4m3_blocks(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scale_inv) {
  const int64_t br = (rows + kBlock - 1) / kBlock, bc = (cols + kBlock - 1) / kBlock;
  parallel_for(br * bc, [&](int64_t b) {
    const int64_t r0 = (b / bc) * kBlock, c0 = (b % bc) * kBlock;
    const int64_t r1 = std::min(rows, r0 + kBlock), c1 = std::min(cols, c0 + kBlock);
    float amax = 0.0f;
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
    const float s = amax > 0.0f ? amax / kE4M3Max : 1.0f;
    scale_inv[b] = s;
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c) q[r * cols + c] = f32_to_e4m3(w[r * cols + c] / s);
  });
}

Result<ExportStats> export_hf_model(const ExportOptions& opt) {
  Result<TrainState> st = read_checkpoint_state(opt.checkpoint_dir);  // validates the checksums
  DSV3_TRY(st);
  Result<std::string> config_text = read_checkpoint_config(opt.checkpoint_dir);
  DSV3_TRY(config_text);
  Result<ModelConfig> parsed = parse_model_config(*config_text, opt.checkpoint_dir + "/config.json");
  DSV3_TRY(parsed);
  ModelConfig cfg = *parsed;
  Result<SafetensorsFile> src = SafetensorsFile::open((fs::path(opt.checkpoint_dir) / "model.safetensors").string());
  DSV3_TRY(src);

  std::vector<OutTensor> out;
  ExportStats stats;
  for (const TensorSpec& spec : expected_tensors(cfg)) {
    const std::string from = source_name(spec, cfg);
    const TensorInfo* t = src->find(from);
    if (t == nullptr) return Status::errorf("{}: no tensor '{}' (needed for '{}')", src->path(), from, spec.name);
    if (t->dtype != DType::F32 || t->shape != spec.shape)
      return Status::errorf("{}: '{}' is {} {}, the config needs F32 {}", src->path(), from, dtype_name(t->dtype),
                            shape_str(t->shape), shape_str(spec.shape));
    const int64_t n = t->numel();
    std::vector<float> w(static_cast<size_t>(n));
    std::memcpy(w.data(), t->data, size_t(n) * 4);  // the mapping may not be 4-byte aligned
    const bool fp8 = opt.dtype == ExportDType::FP8 && spec.fp8_allowed && spec.is_matrix();
    if (spec.role == TensorRole::RouterBias || opt.dtype == ExportDType::F32) {
      OutTensor o{spec.name, DType::F32, spec.shape, std::vector<uint8_t>(size_t(n) * 4)};
      std::memcpy(o.bytes.data(), w.data(), o.bytes.size());
      out.push_back(std::move(o));
    } else if (fp8) {
      const std::vector<int64_t> sshape = fp8_scale_shape(spec.shape[0], spec.shape[1]);
      OutTensor q{spec.name, DType::F8_E4M3, spec.shape, std::vector<uint8_t>(size_t(n))};
      OutTensor s{fp8_scale_name(spec.name), DType::F32, sshape, std::vector<uint8_t>(size_t(sshape[0] * sshape[1]) * 4)};
      quantize_e4m3_blocks(w.data(), spec.shape[0], spec.shape[1], q.bytes.data(), reinterpret_cast<float*>(s.bytes.data()));
      out.push_back(std::move(q));
      out.push_back(std::move(s));
    } else {
      OutTensor o{spec.name, DType::BF16, spec.shape, std::vector<uint8_t>(size_t(n) * 2)};
      auto* p = reinterpret_cast<uint16_t*>(o.bytes.data());
      for (int64_t i = 0; i < n; ++i) p[i] = f32_to_bf16(w[size_t(i)]);
      out.push_back(std::move(o));
    }
  }

  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) return Status::errorf("{}: cannot create directory: {}", opt.out_dir, ec.message());
  std::vector<TensorData> views;
  for (const OutTensor& o : out) {
    views.push_back({o.name, o.dtype, o.shape, o.bytes});
    stats.bytes += int64_t(o.bytes.size());
  }
  stats.tensors = int64_t(views.size());
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  if (opt.shards > 1) {
    DSV3_TRY(write_sharded_safetensors(opt.out_dir, views, opt.shards, meta));
  } else {
    DSV3_TRY(write_safetensors((fs::path(opt.out_dir) / "model.safetensors").string(), views, meta));
  }
  cfg.fp8_weights = opt.dtype == ExportDType::FP8;
  DSV3_TRY(write_file_atomic((fs::path(opt.out_dir) / "config.json").string(), model_config_to_json(cfg)));

  if (!opt.tokenizer_dir.empty()) {
    const fs::path tok = fs::path(opt.tokenizer_dir);
    if (!fs::exists(tok / "tokenizer.json")) return Status::errorf("{}: no tokenizer.json", opt.tokenizer_dir);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      if (!fs::exists(tok / f)) continue;
      Result<std::string> text = read_text_file((tok / f).string());
      DSV3_TRY(text);
      DSV3_TRY(write_file_atomic((fs::path(opt.out_dir) / f).string(), *text));
    }
  }
  return stats;
}

}  // namespace dsv3
