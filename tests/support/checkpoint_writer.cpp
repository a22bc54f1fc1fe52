#include "support/checkpoint_writer.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "core/check.h"
#include "core/numeric.h"
#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/loader.h"

namespace dsv3::testing {

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  size_t n = out.size();
  out.resize(n + sizeof(T));
  std::memcpy(out.data() + n, &v, sizeof(T));
}

OwnedTensor encode(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v, DType dt) {
  OwnedTensor t{name, dt, shape, {}};
  t.bytes.reserve(v.size() * dtype_size(dt));
  for (float x : v) {
    if (dt == DType::F32) put(t.bytes, x);
    else if (dt == DType::BF16) put(t.bytes, f32_to_bf16(x));
    else if (dt == DType::F16) put(t.bytes, f32_to_f16(x));
    else DSV3_FAIL("encode: unsupported dtype {}", dtype_name(dt));
  }
  return t;
}

// Block FP8 as DeepSeek made it (spec §5.3): per 128x128 block S = amax/448, q = RNE(W/S);
// partial edge blocks use only their real elements.
void quantize_fp8(const std::string& name, int64_t rows, int64_t cols, const std::vector<float>& w,
                  std::vector<OwnedTensor>& out) {
  constexpr int64_t B = kernels::kFp8Block;
  auto sshape = fp8_scale_shape(rows, cols);
  std::vector<float> scales(size_t(sshape[0] * sshape[1]));
  OwnedTensor q{name, DType::F8_E4M3, {rows, cols}, std::vector<uint8_t>(size_t(rows * cols))};
  for (int64_t br = 0; br < sshape[0]; ++br) {
    for (int64_t bc = 0; bc < sshape[1]; ++bc) {
      int64_t r1 = std::min(rows, (br + 1) * B), c1 = std::min(cols, (bc + 1) * B);
      float amax = 0;
      for (int64_t r = br * B; r < r1; ++r)
        for (int64_t c = bc * B; c < c1; ++c) amax = std::max(amax, std::fabs(w[size_t(r * cols + c)]));
      float s = std::max(amax, 1e-12f) / kE4M3Max;
      scales[size_t(br * sshape[1] + bc)] = s;
      for (int64_t r = br * B; r < r1; ++r)
        for (int64_t c = bc * B; c < c1; ++c) q.bytes[size_t(r * cols + c)] = f32_to_e4m3(w[size_t(r * cols + c)] / s);
    }
  }
  out.push_back(std::move(q));
  out.push_back(encode(fp8_scale_name(name), sshape, scales, DType::F32));
}

}  // namespace

ModelConfig tiny_v3_config() {
  ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = 256;
  c.dim = 64;
  c.inter_dim = 96;
  c.moe_inter_dim = 32;
  c.n_layers = 3;
  c.n_mtp_layers = 1;
  c.n_dense_layers = 1;
  c.n_heads = 4;
  c.q_lora_rank = 48;
  c.kv_lora_rank = 32;
  c.qk_nope_head_dim = 16;
  c.qk_rope_head_dim = 8;
  c.v_head_dim = 12;
  c.n_routed_experts = 8;
  c.n_shared_experts = 1;
  c.n_activated_experts = 2;
  c.n_expert_groups = 4;
  c.n_limited_groups = 2;
  c.score_func = ScoreFunc::Sigmoid;
  c.topk_method = TopkMethod::NoauxTc;
  c.norm_topk_prob = true;
  c.route_scale = 2.5;
  c.max_position_embeddings = 256;
  c.yarn = {.enabled = true, .factor = 4.0, .original_max_position_embeddings = 64, .beta_fast = 32.0,
            .beta_slow = 1.0, .mscale = 1.0, .mscale_all_dim = 1.0};
  return c;
}

ModelConfig tiny_v2_lite_config() {
  ModelConfig c;
  c.model_type = "deepseek_v2";
  c.vocab_size = 200;
  c.dim = 48;
  c.inter_dim = 80;
  c.moe_inter_dim = 24;
  c.n_layers = 3;
  c.n_dense_layers = 1;
  c.n_heads = 2;
  c.q_lora_rank = 0;
  c.kv_lora_rank = 32;
  c.qk_nope_head_dim = 16;
  c.qk_rope_head_dim = 8;
  c.v_head_dim = 16;
  c.n_routed_experts = 8;
  c.n_shared_experts = 2;
  c.n_activated_experts = 3;
  c.score_func = ScoreFunc::Softmax;
  c.topk_method = TopkMethod::Greedy;
  c.norm_topk_prob = false;
  c.route_scale = 1.0;
  c.max_position_embeddings = 256;
  c.yarn = {.enabled = true, .factor = 4.0, .original_max_position_embeddings = 64, .beta_fast = 32.0,
            .beta_slow = 1.0, .mscale = 0.707, .mscale_all_dim = 0.707};
  c.bos_token_id = 100;
  c.eos_token_id = 101;
  return c;
}

ModelConfig odd_dims_config() {
  ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = 100;
  c.dim = 72;
  c.inter_dim = 88;
  c.moe_inter_dim = 20;
  c.n_layers = 2;
  c.n_mtp_layers = 1;
  c.n_dense_layers = 1;
  c.n_heads = 3;
  c.q_lora_rank = 40;
  c.kv_lora_rank = 24;
  c.qk_nope_head_dim = 10;
  c.qk_rope_head_dim = 6;
  c.v_head_dim = 14;
  c.n_routed_experts = 6;
  c.n_shared_experts = 1;
  c.n_activated_experts = 2;
  c.n_expert_groups = 3;
  c.n_limited_groups = 2;
  c.route_scale = 1.5;
  c.max_position_embeddings = 128;
  return c;
}

ModelConfig fp8_edge_config() {
  ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = 300;
  c.dim = 200;
  c.inter_dim = 300;
  c.moe_inter_dim = 136;
  c.n_layers = 2;
  c.n_mtp_layers = 1;
  c.n_dense_layers = 1;
  c.n_heads = 2;
  c.q_lora_rank = 136;
  c.kv_lora_rank = 160;
  c.qk_nope_head_dim = 24;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 40;
  c.n_routed_experts = 4;
  c.n_shared_experts = 1;
  c.n_activated_experts = 2;
  c.n_expert_groups = 2;
  c.n_limited_groups = 1;
  c.route_scale = 2.5;
  c.max_position_embeddings = 512;
  c.fp8_weights = true;
  return c;
}

std::string config_to_json(const ModelConfig& cfg) { return model_config_to_json(cfg); }

std::vector<OwnedTensor> random_tensors(const ModelConfig& cfg, const RandomCheckpointOptions& opt) {
  std::vector<OwnedTensor> out;
  const bool fp8 = opt.dtype == DType::F8_E4M3;
  const DType plain = fp8 ? DType::BF16 : opt.dtype;
  for_each_tensor(cfg, nullptr, [&](const TensorSpec& s, TensorSlot) {
    if (s.optional && !opt.mtp_copies) return;
    // MTP copies of embed_tokens / lm_head hold the same values as the originals.
    std::string stream_name = s.name;
    if (s.optional) stream_name = s.role == TensorRole::Embedding ? "model.embed_tokens.weight" : "lm_head.weight";
    Rng rng(opt.seed, fnv1a(stream_name));
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      float z = rng.normal(uint64_t(i));
      v[size_t(i)] = s.role == TensorRole::Norm         ? 1.0f + opt.norm_std * z
                     : s.role == TensorRole::RouterBias ? opt.bias_std * z
                                                        : opt.init_std * z;
    }
    if (fp8 && s.fp8_allowed) {
      quantize_fp8(s.name, s.shape[0], s.shape[1], v, out);
    } else {
      out.push_back(encode(s.name, s.shape, v, s.role == TensorRole::RouterBias ? DType::F32 : plain));
    }
  });
  return out;
}

Status write_checkpoint(const std::string& dir, const ModelConfig& cfg, const std::vector<OwnedTensor>& tensors,
                        int n_shards) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::errorf("{}: cannot create: {}", dir, ec.message());
  ModelConfig c = cfg;
  c.fp8_weights = std::any_of(tensors.begin(), tensors.end(), [](const OwnedTensor& t) { return t.dtype == DType::F8_E4M3; });
  DSV3_TRY(write_file_atomic((std::filesystem::path(dir) / "config.json").string(), config_to_json(c)));
  std::vector<TensorData> data;
  for (const OwnedTensor& t : tensors) data.push_back({t.name, t.dtype, t.shape, t.bytes});
  std::map<std::string, std::string> meta{{"format", "pt"}};
  if (n_shards <= 1) return write_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), data, meta);
  return write_sharded_safetensors(dir, data, n_shards, meta);
}

Status write_random_checkpoint(const std::string& dir, const ModelConfig& cfg, const RandomCheckpointOptions& opt) {
  return write_checkpoint(dir, cfg, random_tensors(cfg, opt), opt.n_shards);
}

namespace {
// Directories made by make_temp_dir, removed when the test binary exits.
struct TempDirs {
  std::mutex mu;
  std::vector<std::filesystem::path> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};
TempDirs& temp_dirs() {
  static TempDirs t;
  return t;
}
}  // namespace

std::string make_temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto base = std::filesystem::temp_directory_path() /
              fmt::format("dsv3_{}_{}_{}", tag, getpid(), counter.fetch_add(1));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  std::lock_guard<std::mutex> lock(temp_dirs().mu);
  temp_dirs().dirs.push_back(base);
  return base.string();
}

}  // namespace dsv3::testing
