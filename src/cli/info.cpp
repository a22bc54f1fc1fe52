// `dsv3 info --model DIR [--json]`: loads and validates a checkpoint, then prints its shape,
// parameter counts (total, active per token, MTP), bytes on disk by dtype, KV-cache bytes per
// token (latent vs per-head) and the resident memory after loading next to the file size.
#include <fmt/format.h>

#include <memory>

#include "cli/command.h"
#include "io/json.h"
#include "model/loader.h"
#include "model/model_stats.h"

namespace dsv3::cli {
namespace {

struct Opts {
  std::string model;
  bool json = false;
};

const char* rope_kind(const ModelConfig& c) { return c.yarn.enabled ? "yarn" : "default"; }

Json breakdown_json(const ParamBreakdown& b) {
  Json j = Json::object();
  for (const auto& [name, n] : b.items()) j[name] = n;
  j["total"] = b.total();
  return j;
}

Json info_json(const LoadedModel& m, const ModelStats& st, const DiskStats& disk, int64_t rss) {
  const ModelConfig& c = m.config;
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) moe_layers += c.is_moe_layer(l);
  Json j;
  j["model"] = m.checkpoint.root();
  j["config"] = Json::parse(model_config_to_json(c));
  j["shape"] = {{"layers", c.n_layers},       {"dense_layers", c.n_layers - moe_layers},
                {"moe_layers", moe_layers},   {"mtp_layers", c.n_mtp_layers},
                {"dim", c.dim},               {"vocab", c.vocab_size},
                {"heads", c.n_heads},         {"q_lora_rank", c.q_lora_rank},
                {"kv_lora_rank", c.kv_lora_rank}, {"qk_nope_head_dim", c.qk_nope_head_dim},
                {"qk_rope_head_dim", c.qk_rope_head_dim}, {"v_head_dim", c.v_head_dim},
                {"routed_experts", c.n_routed_experts}, {"shared_experts", c.n_shared_experts},
                {"active_experts", c.n_activated_experts}, {"rope", rope_kind(c)},
                {"fp8_weights", c.fp8_weights}};
  j["params"] = breakdown_json(st.params);
  j["active_params"] = breakdown_json(st.active);
  j["active_params_with_full_embedding"] = st.active.total() - c.dim + c.vocab_size * c.dim;
  j["mtp_params"] = breakdown_json(st.mtp);
  j["mtp_active_params"] = breakdown_json(st.mtp_active);
  j["mtp_copy_params"] = st.mtp_copies;
  Json by_dtype = Json::object();
  for (const auto& [dt, bytes] : disk.bytes_by_dtype) by_dtype[dt] = {{"bytes", bytes}, {"tensors", disk.tensors_by_dtype.at(dt)}};
  j["disk"] = {{"files", disk.n_files}, {"file_bytes", disk.file_bytes}, {"tensors", disk.n_tensors},
               {"by_dtype", by_dtype}};
  j["kv_cache_per_token"] = {
      {"latent_values", st.kv_latent_values},   {"latent_bytes_f32", 4 * st.kv_latent_values},
      {"latent_bytes_bf16", 2 * st.kv_latent_values}, {"mha_values", st.kv_mha_values},
      {"mha_bytes_f32", 4 * st.kv_mha_values},   {"mha_bytes_bf16", 2 * st.kv_mha_values},
      {"mtp_latent_values", st.kv_latent_values_mtp}};
  j["resident_bytes_after_load"] = rss;
  return j;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.2f} {}", b, units[u]);
}

std::string human_count(int64_t n) {
  if (n >= 1000000000) return fmt::format("{:.3f}B", double(n) / 1e9);
  if (n >= 1000000) return fmt::format("{:.3f}M", double(n) / 1e6);
  if (n >= 1000) return fmt::format("{:.1f}K", double(n) / 1e3);
  return std::to_string(n);
}

void print_breakdown(const char* title, const ParamBreakdown& b) {
  fmt::print("{:<34}{:>18}  ({})\n", title, b.total(), human_count(b.total()));
  for (const auto& [name, n] : b.items()) {
    if (n != 0) fmt::print("    {:<30}{:>18}\n", name, n);
  }
}

void print_text(const LoadedModel& m, const ModelStats& st, const DiskStats& disk, int64_t rss) {
  const ModelConfig& c = m.config;
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) moe_layers += c.is_moe_layer(l);
  fmt::print("model          {} ({})\n", m.checkpoint.root(), c.model_type);
  fmt::print("layers         {} ({} dense, {} MoE) + {} MTP\n", c.n_layers, c.n_layers - moe_layers, moe_layers,
             c.n_mtp_layers);
  fmt::print("dim / vocab    {} / {}\n", c.dim, c.vocab_size);
  fmt::print("attention      MLA, {} heads, q_lora_rank {}, kv_lora_rank {}, qk {}+{} (nope+rope), v {}\n",
             c.n_heads, c.q_lora_rank, c.kv_lora_rank, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim);
  fmt::print("mlp            dense inter {}; {} routed experts (inter {}), {} shared; top-{} experts from {} of {} "
             "groups\n",
             c.inter_dim, c.n_routed_experts, c.moe_inter_dim, c.n_shared_experts, c.n_activated_experts,
             c.n_limited_groups, c.n_expert_groups);
  fmt::print("rope           {} (theta {}{})\n", rope_kind(c), c.rope_theta,
             c.yarn.enabled ? fmt::format(", factor {}, original {}", c.yarn.factor,
                                          c.yarn.original_max_position_embeddings)
                            : "");
  fmt::print("\n");
  print_breakdown("parameters (main model)", st.params);
  print_breakdown("active parameters per token", st.active);
  fmt::print("    (attention, norms, dense MLPs and routers of every layer; top-{} routed + shared experts;\n"
             "     one embedding row; the full head. With the whole embedding matrix: {})\n",
             c.n_activated_experts, st.active.total() - c.dim + c.vocab_size * c.dim);
  print_breakdown("MTP parameters (unique)", st.mtp);
  fmt::print("{:<34}{:>18}\n", "MTP active parameters per token", st.mtp_active.total());
  fmt::print("{:<34}{:>18}\n", "MTP copies of embedding/head", st.mtp_copies);
  fmt::print("\non disk        {} in {} file(s), {} tensors\n", human_bytes(double(disk.file_bytes)), disk.n_files,
             disk.n_tensors);
  for (const auto& [dt, bytes] : disk.bytes_by_dtype) {
    fmt::print("    {:<10}{:>18} bytes  {:>12}  {} tensors\n", dt, bytes, human_bytes(double(bytes)),
               disk.tensors_by_dtype.at(dt));
  }
  fmt::print("\nKV cache per token ({} layers)\n", c.n_layers);
  fmt::print("    latent (kv_lora_rank + qk_rope_head_dim = {} per layer): {} values, {} B f32, {} B bf16\n",
             c.kv_cache_dim(), st.kv_latent_values, 4 * st.kv_latent_values, 2 * st.kv_latent_values);
  fmt::print("    per-head MHA (n_heads * (qk_head_dim + v_head_dim) = {} per layer): {} values, {} B f32, {} B "
             "bf16\n",
             c.n_heads * (c.qk_head_dim() + c.v_head_dim), st.kv_mha_values, 4 * st.kv_mha_values,
             2 * st.kv_mha_values);
  if (c.n_mtp_layers > 0) {
    fmt::print("    MTP layers add {} latent values per token\n", st.kv_latent_values_mtp);
  }
  fmt::print("\nresident memory after loading {} (checkpoint files {}: weights stay memory-mapped)\n",
             rss >= 0 ? human_bytes(double(rss)) : std::string("unknown"), human_bytes(double(disk.file_bytes)));
}

RunFn setup_info(CLI::App& app) {
  auto opts = std::make_shared<Opts>();
  app.add_option("--model", opts->model, "model directory (config.json + safetensors)")->required();
  app.add_flag("--json", opts->json, "print one JSON object instead of text");
  return [opts] {
    auto m = load_model(opts->model);
    if (!m.is_ok()) return fail("info", m.message());
    ModelStats st = compute_model_stats(m->config);
    DiskStats disk = compute_disk_stats(m->checkpoint);
    int64_t rss = resident_memory_bytes();
    if (opts->json) {
      fmt::print("{}\n", info_json(m.value(), st, disk, rss).dump(2));
    } else {
      print_text(m.value(), st, disk, rss);
    }
    return 0;
  };
}

DSV3_COMMAND("info", "print a model's shape, parameter counts, bytes on disk and KV-cache sizes", setup_info);

}  // namespace
}  // namespace dsv3::cli
