// config.json <-> ModelConfig. The tables below are the one place where Hugging Face keys meet
// the reference's field names; parsing and writing both walk them.
//
// Defaults for absent keys follow the Hugging Face configuration classes where a released
// config may omit the key, and are spelled out here:
//   q_lora_rank, n_routed_experts, n_shared_experts, num_experts_per_tok: absent or null -> 0
//     (no low-rank query path / dense model);
//   n_group, topk_group: 1; moe_layer_freq: 1; first_k_dense_replace: 0;
//   num_nextn_predict_layers: 0; routed_scaling_factor: 1.0; rms_norm_eps: 1e-6;
//   scoring_func / topk_method / norm_topk_prob: sigmoid / noaux_tc / true for deepseek_v3 and
//     kimi_k2, softmax / greedy / false for deepseek_v2 (the classes' defaults);
//   YaRN: mscale 1.0 and mscale_all_dim 0.0 when absent, as the DeepSeek modeling code's
//     DeepseekV3YarnRotaryEmbedding does (spec §2.4-2.5: with mscale_all_dim 0 the softmax scale
//     gets no extra factor; the m(f,1) fallback of transformers' generic YaRN code is deliberately
//     not used), original_max_position_embeddings 4096, beta_fast 32, beta_slow 1.
#include <fmt/format.h>

#include <filesystem>

#include "io/atomic_file.h"
#include "io/json.h"
#include "model/config.h"

namespace dsv3 {

namespace {

// Bounds that keep every derived size (rows · cols, experts · rows ...) far from int64 overflow.
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxCount = int64_t(1) << 16;  // layers, heads, experts

struct IntField {
  const char* key;
  int64_t ModelConfig::*member;
  int64_t min;
  int64_t max;
  bool required;
  bool zero_is_null;  // written as null when 0 ("no such path")
};

constexpr IntField kIntFields[] = {
    {"vocab_size", &ModelConfig::vocab_size, 1, kMaxDim, true, false},
    {"hidden_size", &ModelConfig::dim, 1, kMaxDim, true, false},
    {"intermediate_size", &ModelConfig::inter_dim, 0, kMaxDim, false, false},
    {"moe_intermediate_size", &ModelConfig::moe_inter_dim, 0, kMaxDim, false, false},
    {"num_hidden_layers", &ModelConfig::n_layers, 1, kMaxCount, true, false},
    {"num_nextn_predict_layers", &ModelConfig::n_mtp_layers, 0, kMaxCount, false, false},
    {"first_k_dense_replace", &ModelConfig::n_dense_layers, 0, kMaxCount, false, false},
    {"moe_layer_freq", &ModelConfig::moe_layer_freq, 1, kMaxCount, false, false},
    {"num_attention_heads", &ModelConfig::n_heads, 1, kMaxCount, true, false},
    {"q_lora_rank", &ModelConfig::q_lora_rank, 0, kMaxDim, false, true},
    {"kv_lora_rank", &ModelConfig::kv_lora_rank, 1, kMaxDim, true, false},
    {"qk_nope_head_dim", &ModelConfig::qk_nope_head_dim, 1, kMaxDim, true, false},
    {"qk_rope_head_dim", &ModelConfig::qk_rope_head_dim, 2, kMaxDim, true, false},
    {"v_head_dim", &ModelConfig::v_head_dim, 1, kMaxDim, true, false},
    {"n_routed_experts", &ModelConfig::n_routed_experts, 0, kMaxCount, false, true},
    {"n_shared_experts", &ModelConfig::n_shared_experts, 0, kMaxCount, false, true},
    {"num_experts_per_tok", &ModelConfig::n_activated_experts, 0, kMaxCount, false, true},
    {"n_group", &ModelConfig::n_expert_groups, 1, kMaxCount, false, false},
    {"topk_group", &ModelConfig::n_limited_groups, 1, kMaxCount, false, false},
    {"max_position_embeddings", &ModelConfig::max_position_embeddings, 1, int64_t(1) << 40, false, false},
    {"bos_token_id", &ModelConfig::bos_token_id, 0, INT32_MAX, false, false},
};

struct NumberField {
  const char* key;
  double ModelConfig::*member;
};
// All must be finite and > 0.
constexpr NumberField kNumberFields[] = {
    {"routed_scaling_factor", &ModelConfig::route_scale},
    {"rms_norm_eps", &ModelConfig::rms_norm_eps},
    {"rope_theta", &ModelConfig::rope_theta},
};

struct BoolField {
  const char* key;
  bool ModelConfig::*member;
};
constexpr BoolField kBoolFields[] = {
    {"norm_topk_prob", &ModelConfig::norm_topk_prob},
    {"tie_word_embeddings", &ModelConfig::tie_word_embeddings},
};

// The YaRN keys inside rope_scaling / rope_parameters.
struct YarnField {
  const char* key;
  double YarnConfig::*member;
  double min;  // inclusive lower bound
};
constexpr YarnField kYarnFields[] = {
    {"factor", &YarnConfig::factor, 1.0},
    {"beta_fast", &YarnConfig::beta_fast, 0.0},
    {"beta_slow", &YarnConfig::beta_slow, 0.0},
    {"mscale", &YarnConfig::mscale, 0.0},
    {"mscale_all_dim", &YarnConfig::mscale_all_dim, 0.0},
};

struct Named {
  const char* name;
  int value;
};
constexpr Named kScoreFuncs[] = {{"sigmoid", int(ScoreFunc::Sigmoid)}, {"softmax", int(ScoreFunc::Softmax)}};
constexpr Named kTopkMethods[] = {{"noaux_tc", int(TopkMethod::NoauxTc)},
                                  {"group_limited_greedy", int(TopkMethod::GroupLimitedGreedy)},
                                  {"greedy", int(TopkMethod::Greedy)}};

// model_type -> the architectures entry that goes with it.
struct ModelType {
  const char* model_type;
  const char* architectures[2];
};
constexpr ModelType kModelTypes[] = {
    {"deepseek_v3", {"DeepseekV3ForCausalLM", nullptr}},
    {"deepseek_v2", {"DeepseekV2ForCausalLM", nullptr}},
    {"kimi_k2", {"DeepseekV3ForCausalLM", "KimiK2ForCausalLM"}},
};

template <size_t N>
std::string names_of(const Named (&table)[N]) {
  std::string s;
  for (const Named& n : table) s += (s.empty() ? "" : ", ") + std::string("\"") + n.name + "\"";
  return s;
}

template <size_t N>
const char* name_of(const Named (&table)[N], int value) {
  for (const Named& n : table) {
    if (n.value == value) return n.name;
  }
  return "?";
}

std::string int_requirement(const IntField& f) {
  std::string base = f.min == 0 ? "a non-negative integer" : f.min == 1 ? "a positive integer"
                                                                        : fmt::format("an integer >= {}", f.min);
  return fmt::format("{} (at most {})", base, f.max);
}

Status parse_identity(const JsonObject& j, ModelConfig& c) {
  auto type = j.get_string("model_type");
  DSV3_TRY(type);
  const ModelType* mt = nullptr;
  for (const ModelType& m : kModelTypes) {
    if (type.value() == m.model_type) mt = &m;
  }
  if (mt == nullptr) return j.field_error("model_type", "one of \"deepseek_v3\", \"deepseek_v2\", \"kimi_k2\"");
  c.model_type = type.value();
  if (const Json* arch = j.find("architectures"); arch != nullptr && !arch->is_null()) {
    if (!arch->is_array() || arch->empty()) return j.field_error("architectures", "a non-empty array of strings");
    bool match = false;
    for (const Json& a : *arch) {
      if (!a.is_string()) return j.field_error("architectures", "a non-empty array of strings");
      for (const char* want : mt->architectures) match = match || (want != nullptr && a.get<std::string>() == want);
    }
    if (!match) {
      return j.field_error("architectures", fmt::format("[\"{}\"] for model_type \"{}\"", mt->architectures[0],
                                                         c.model_type));
    }
  }
  return Status::ok();
}

template <size_t N>
Status parse_enum(const JsonObject& j, const char* key, const Named (&table)[N], int& out) {
  if (!j.has(key)) return Status::ok();
  auto s = j.get_string(key);
  DSV3_TRY(s);
  for (const Named& n : table) {
    if (s.value() == n.name) {
      out = n.value;
      return Status::ok();
    }
  }
  return j.field_error(key, "one of " + names_of(table));
}

Status parse_rope(const JsonObject& j, ModelConfig& c) {
  // transformers >= 4.5x renamed rope_scaling to rope_parameters (which may carry rope_theta).
  const char* key = j.has("rope_scaling") ? "rope_scaling" : "rope_parameters";
  auto obj = j.get_object(key);
  DSV3_TRY(obj);
  if (!obj.value()) return Status::ok();
  const JsonObject& r = *obj.value();
  if (!j.has("rope_theta") && r.has("rope_theta")) {
    auto theta = r.get_number("rope_theta");
    DSV3_TRY(theta);
    if (theta.value() <= 0) return r.field_error("rope_theta", "a positive number");
    c.rope_theta = theta.value();
  }
  const char* type_key = r.has("type") ? "type" : "rope_type";
  auto type = r.get_string(type_key, "default");
  DSV3_TRY(type);
  if (type.value() == "default") return Status::ok();
  if (type.value() != "yarn") return r.field_error(type_key, "\"yarn\" or \"default\" (the only RoPE kinds of this model family)");
  YarnConfig& y = c.yarn;
  y.enabled = true;
  if (!r.has("factor")) return r.missing("factor");
  for (const YarnField& f : kYarnFields) {
    auto v = r.get_number(f.key, y.*f.member);
    DSV3_TRY(v);
    bool ok = f.min > 0 ? v.value() >= f.min : v.value() > 0 || (v.value() == 0 && f.key[0] == 'm');
    if (!ok) {
      return r.field_error(f.key, f.min > 0 ? fmt::format("a number >= {}", f.min)
                                            : std::string(f.key[0] == 'm' ? "a non-negative number" : "a positive number"));
    }
    y.*f.member = v.value();
  }
  auto orig = r.get_int("original_max_position_embeddings", y.original_max_position_embeddings);
  DSV3_TRY(orig);
  if (orig.value() < 1) return r.field_error("original_max_position_embeddings", "a positive integer");
  y.original_max_position_embeddings = orig.value();
  return Status::ok();
}

Status parse_quantization(const JsonObject& j, ModelConfig& c) {
  auto obj = j.get_object("quantization_config");
  DSV3_TRY(obj);
  if (!obj.value()) return Status::ok();
  const JsonObject& q = *obj.value();
  auto method = q.get_string("quant_method");
  DSV3_TRY(method);
  if (method.value() != "fp8") return q.field_error("quant_method", "\"fp8\" (block-scaled E4M3 weights)");
  auto fmt = q.get_string("fmt", "e4m3");
  DSV3_TRY(fmt);
  if (fmt.value() != "e4m3") return q.field_error("fmt", "\"e4m3\"");
  const Json* block = q.find("weight_block_size");
  if (block == nullptr || block->is_null()) return q.missing("weight_block_size");
  if (!block->is_array() || block->size() != 2 || json_as_int((*block)[0]) != 128 ||
      json_as_int((*block)[1]) != 128) {
    return q.field_error("weight_block_size", "[128, 128] (the only FP8 block size supported)");
  }
  c.fp8_weights = true;
  return Status::ok();
}

Status parse_fields(const JsonObject& j, ModelConfig& c) {
  DSV3_TRY(parse_identity(j, c));
  bool v2 = c.model_type == "deepseek_v2";
  c.score_func = v2 ? ScoreFunc::Softmax : ScoreFunc::Sigmoid;
  c.topk_method = v2 ? TopkMethod::Greedy : TopkMethod::NoauxTc;
  c.norm_topk_prob = !v2;
  for (const IntField& f : kIntFields) {
    if (f.required && !j.has(f.key)) return j.missing(f.key);
    if (!j.has(f.key)) continue;
    auto v = j.get_int(f.key);
    if (!v.is_ok() || v.value() < f.min || v.value() > f.max) return j.field_error(f.key, int_requirement(f));
    c.*f.member = v.value();
  }
  for (const NumberField& f : kNumberFields) {
    auto v = j.get_number(f.key, c.*f.member);
    if (!v.is_ok() || !(v.value() > 0)) return j.field_error(f.key, "a positive number");
    c.*f.member = v.value();
  }
  for (const BoolField& f : kBoolFields) {
    auto v = j.get_bool(f.key, c.*f.member);
    DSV3_TRY(v);
    c.*f.member = v.value();
  }
  // eos_token_id may be one id or a list (generation stops at any); the first is the primary.
  if (const Json* eos = j.find("eos_token_id"); eos != nullptr && !eos->is_null()) {
    const Json& first = eos->is_array() && !eos->empty() ? (*eos)[0] : *eos;
    auto id = json_as_int(first);
    if (!id || *id < 0 || *id > INT32_MAX) return j.field_error("eos_token_id", "a non-negative integer or a list of them");
    c.eos_token_id = *id;
  }
  int score = int(c.score_func), topk = int(c.topk_method);
  DSV3_TRY(parse_enum(j, "scoring_func", kScoreFuncs, score));
  DSV3_TRY(parse_enum(j, "topk_method", kTopkMethods, topk));
  c.score_func = ScoreFunc(score);
  c.topk_method = TopkMethod(topk);

  // Keys that must hold one value because the engine implements only that one.
  auto act = j.get_string("hidden_act", "silu");
  if (!act.is_ok() || act.value() != "silu") return j.field_error("hidden_act", "\"silu\"");
  auto bias = j.get_bool("attention_bias", false);
  if (!bias.is_ok() || bias.value()) return j.field_error("attention_bias", "false (MLA has no projection biases)");
  auto interleave = j.get_bool("rope_interleave", true);
  if (!interleave.is_ok() || !interleave.value()) {
    return j.field_error("rope_interleave", "true (released weights store rotary dims as interleaved pairs)");
  }
  DSV3_TRY(parse_rope(j, c));
  DSV3_TRY(parse_quantization(j, c));
  return validate_model_config(c, j.source());
}

}  // namespace

Status validate_model_config(const ModelConfig& c, const std::string& src) {
  for (const IntField& f : kIntFields) {
    int64_t v = c.*f.member;
    if (v < f.min || v > f.max || (f.required && v == 0)) {
      return Status::errorf("{}: field '{}' must be {}, got {}", src, f.key, int_requirement(f), v);
    }
  }
  if (c.qk_rope_head_dim % 2 != 0) {
    return Status::errorf("{}: field 'qk_rope_head_dim' must be even (rotary dims come in pairs), got {}", src,
                          c.qk_rope_head_dim);
  }
  const int64_t total_layers = c.n_layers + c.n_mtp_layers;
  bool any_dense = false, any_moe = false;
  for (int64_t l = 0; l < total_layers; ++l) (c.is_moe_layer(l) ? any_moe : any_dense) = true;
  if (any_dense && c.inter_dim < 1) {
    return Status::errorf("{}: field 'intermediate_size' must be a positive integer (the model has dense MLP layers), got {}",
                          src, c.inter_dim);
  }
  if (c.n_routed_experts > 0) {
    const int64_t E = c.n_routed_experts, G = c.n_expert_groups;
    if (any_moe && c.moe_inter_dim < 1) {
      return Status::errorf("{}: field 'moe_intermediate_size' must be a positive integer (the model has MoE layers), got {}",
                            src, c.moe_inter_dim);
    }
    if (c.n_activated_experts < 1 || c.n_activated_experts > E) {
      return Status::errorf("{}: field 'num_experts_per_tok' must be in [1, n_routed_experts = {}], got {}", src, E,
                            c.n_activated_experts);
    }
    if (E % G != 0) {
      return Status::errorf("{}: n_routed_experts ({}) must be a multiple of n_group ({})", src, E, G);
    }
    if (c.n_limited_groups > G) {
      return Status::errorf("{}: topk_group ({}) must not exceed n_group ({})", src, c.n_limited_groups, G);
    }
    if (c.topk_method != TopkMethod::Greedy && c.n_activated_experts > c.n_limited_groups * (E / G)) {
      return Status::errorf("{}: num_experts_per_tok ({}) exceeds the experts in topk_group ({}) groups of {}", src,
                            c.n_activated_experts, c.n_limited_groups, E / G);
    }
    // noaux_tc scores a group by the sum of its two best experts; with one group that stage is
    // a no-op and any group size works.
    if (c.topk_method == TopkMethod::NoauxTc && G > 1 && E / G < 2) {
      return Status::errorf("{}: topk_method \"noaux_tc\" scores each of the n_group ({}) groups by its top-2 experts, "
                            "so each group needs at least 2 experts, got {}",
                            src, G, E / G);
    }
  }
  for (const NumberField& f : kNumberFields) {
    if (!(c.*f.member > 0) || !std::isfinite(c.*f.member)) {
      return Status::errorf("{}: field '{}' must be a positive number, got {}", src, f.key, c.*f.member);
    }
  }
  if (c.yarn.enabled) {
    for (const YarnField& f : kYarnFields) {
      double v = c.yarn.*f.member;
      if (!std::isfinite(v) || v < f.min || (f.min == 0 && f.key[0] == 'b' && v == 0)) {
        return Status::errorf("{}: field 'rope_scaling.{}' is out of range: {}", src, f.key, v);
      }
    }
    if (c.yarn.original_max_position_embeddings < 1) {
      return Status::errorf("{}: field 'rope_scaling.original_max_position_embeddings' must be positive", src);
    }
  }
  if (c.eos_token_id < 0) return Status::errorf("{}: field 'eos_token_id' must be non-negative", src);
  return Status::ok();
}

Result<ModelConfig> parse_model_config(const std::string& json_text, const std::string& source) {
  auto j = parse_json(json_text, source);
  DSV3_TRY(j);
  if (!j->is_object()) return Status::errorf("{}: not a JSON object", source);
  ModelConfig c;
  DSV3_TRY(parse_fields(JsonObject(j.value(), source), c));
  return c;
}

Result<ModelConfig> parse_model_config(const std::string& json_text) {
  return parse_model_config(json_text, "config.json");
}

Result<ModelConfig> load_model_config(const std::string& path) {
  std::error_code ec;
  std::string file = std::filesystem::is_directory(path, ec) ? (std::filesystem::path(path) / "config.json").string()
                                                             : path;
  auto text = read_text_file(file);
  DSV3_TRY(text);
  return parse_model_config(text.value(), file);
}

std::string model_config_to_json(const ModelConfig& c) {
  Json j = Json::object();
  const char* arch = "DeepseekV3ForCausalLM";
  for (const ModelType& m : kModelTypes) {
    if (c.model_type == m.model_type) arch = m.architectures[0];
  }
  j["architectures"] = {arch};
  j["model_type"] = c.model_type;
  for (const IntField& f : kIntFields) {
    int64_t v = c.*f.member;
    j[f.key] = f.zero_is_null && v == 0 ? Json(nullptr) : Json(v);
  }
  j["eos_token_id"] = c.eos_token_id;
  for (const NumberField& f : kNumberFields) j[f.key] = c.*f.member;
  for (const BoolField& f : kBoolFields) j[f.key] = c.*f.member;
  j["scoring_func"] = name_of(kScoreFuncs, int(c.score_func));
  j["topk_method"] = name_of(kTopkMethods, int(c.topk_method));
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["num_key_value_heads"] = c.n_heads;  // nominal (MLA has no KV grouping); HF code reads it
  if (c.yarn.enabled) {
    Json r = {{"type", "yarn"}, {"original_max_position_embeddings", c.yarn.original_max_position_embeddings}};
    for (const YarnField& f : kYarnFields) r[f.key] = c.yarn.*f.member;
    j["rope_scaling"] = r;
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (c.fp8_weights) {
    j["quantization_config"] = {{"quant_method", "fp8"},
                                {"fmt", "e4m3"},
                                {"activation_scheme", "dynamic"},
                                {"weight_block_size", {128, 128}}};
  }
  return j.dump(2) + "\n";
}

}  // namespace dsv3
