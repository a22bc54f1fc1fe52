#include "server/openai.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace dsv3::server {

Json error_json(const ApiError& e) {
  Json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return Json{{"error", err}};
}

namespace {

ApiError bad(std::string param, std::string message, std::string code = "invalid_value") {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

Parsed<Json> parse_object(const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return ApiError{400, "the request body is not valid JSON", "invalid_request_error", "", "invalid_json"};
  if (!j.is_object()) return ApiError{400, "the request body must be a JSON object", "invalid_request_error", "", "invalid_json"};
  return j;
}

// Optional number field in [lo, hi]; writes it to `out` when present and not null.
std::optional<ApiError> get_number(const Json& j, const char* key, double lo, double hi, float& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return bad(key, fmt::format("'{}' must be a number", key), "invalid_type");
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi)) return bad(key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, v));
  out = float(v);
  return std::nullopt;
}

// Message content: a string, or an array of {"type": "text", "text": ...} parts.
std::optional<std::string> content_text(const Json& c) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) return std::nullopt;
  std::string text;
  for (const auto& part : c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      return std::nullopt;
    text += part["text"].get<std::string>();
  }
  return text;
}

// Tokens of a prompt string from the API (not a chat template rendering): the tokenizer's BOS rule.
std::vector<int32_t> encode_prompt(const Tokenizer& tok, const std::string& text) {
  return tok.encode(text, tok.add_bos_token());
}

std::optional<ApiError> parse_messages(const Json& j, std::vector<ChatMessage>& out) {
  auto it = j.find("messages");
  if (it == j.end()) return bad("messages", "missing required field 'messages'", "missing_field");
  if (!it->is_array()) return bad("messages", "'messages' must be an array", "invalid_type");
  if (it->empty()) return bad("messages", "'messages' must not be empty");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& m = (*it)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) return bad(where, fmt::format("'{}' must be an object", where), "invalid_type");
    if (!m.contains("role") || !m["role"].is_string())
      return bad(where + ".role", fmt::format("'{}.role' must be a string", where), "invalid_type");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "developer")
      return bad(where + ".role", fmt::format("unsupported role '{}' (system, user, assistant)", role));
    if (!m.contains("content")) return bad(where + ".content", fmt::format("missing '{}.content'", where), "missing_field");
    auto text = content_text(m["content"]);
    if (!text)
      return bad(where + ".content", fmt::format("'{}.content' must be a string or an array of text parts", where),
                 "invalid_type");
    ChatMessage msg;
    msg.role = role == "developer" ? "system" : role;
    msg.content = std::move(*text);
    out.push_back(std::move(msg));
  }
  return std::nullopt;
}

}  // namespace

std::vector<int32_t> chat_prompt_tokens(const std::vector<ChatMessage>& messages, const Tokenizer& tok) {
  return tok.encode(render_chat(messages, /*add_generation_prompt=*/true, ChatTemplateTokens::for_tokenizer(tok)),
                    /*add_bos=*/false);
}

Parsed<CompletionRequest> parse_completion_request(const std::string& body, bool chat, const Tokenizer& tok,
                                                   const ApiLimits& limits, uint64_t seed_fallback) {
  auto parsed = parse_object(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  CompletionRequest r;
  r.chat = chat;

  auto model = j.find("model");
  if (model == j.end()) return bad("model", "missing required field 'model'", "missing_field");
  if (!model->is_string()) return bad("model", "'model' must be a string", "invalid_type");
  r.model = model->get<std::string>();
  if (r.model != limits.model_name)
    return ApiError{404, fmt::format("the model '{}' does not exist; this server serves '{}'", r.model, limits.model_name),
                    "invalid_request_error", "model", "model_not_found"};

  if (chat) {
    if (auto e = parse_messages(j, r.messages)) return *e;
    r.gen.prompt = chat_prompt_tokens(r.messages, tok);
  } else {
    auto p = j.find("prompt");
    if (p == j.end()) return bad("prompt", "missing required field 'prompt'", "missing_field");
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt_text = (*p)[0].get<std::string>();
    } else if (p->is_string()) {
      r.prompt_text = p->get<std::string>();
    } else {
      return bad("prompt", "'prompt' must be a string (or an array of one string)", "invalid_type");
    }
    r.gen.prompt = encode_prompt(tok, r.prompt_text);
    if (r.gen.prompt.empty()) return bad("prompt", "'prompt' must not be empty");
  }

  if (auto s = j.find("stream"); s != j.end() && !s->is_null()) {
    if (!s->is_boolean()) return bad("stream", "'stream' must be a boolean", "invalid_type");
    r.stream = s->get<bool>();
  }
  if (auto so = j.find("stream_options"); so != j.end() && !so->is_null()) {
    if (!so->is_object()) return bad("stream_options", "'stream_options' must be an object", "invalid_type");
    if (auto iu = so->find("include_usage"); iu != so->end()) {
      if (!iu->is_boolean()) return bad("stream_options.include_usage", "'include_usage' must be a boolean", "invalid_type");
      r.include_usage = iu->get<bool>();
    }
  }
  if (auto n = j.find("n"); n != j.end() && !n->is_null()) {
    if (!n->is_number_integer() || n->get<int64_t>() != 1) return bad("n", "only n = 1 is supported");
  }

  const int64_t P = int64_t(r.gen.prompt.size());
  const int64_t C = limits.context_length;
  if (P >= C)
    return bad(chat ? "messages" : "prompt",
               fmt::format("the prompt is {} tokens; this model's context is {} tokens", P, C), "context_length_exceeded");
  const char* max_key = j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (auto m = j.find(max_key); m != j.end() && !m->is_null()) {
    if (!m->is_number_integer()) return bad(max_key, fmt::format("'{}' must be an integer", max_key), "invalid_type");
    const int64_t v = m->is_number_unsigned() && m->get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : m->get<int64_t>();
    if (v < 1 || v > C) return bad(max_key, fmt::format("'{}' must be between 1 and {}, got {}", max_key, C, v));
    if (P + v > C)
      return bad(max_key,
                 fmt::format("prompt ({} tokens) + {} ({}) exceeds this model's context of {} tokens", P, max_key, v, C),
                 "context_length_exceeded");
    r.gen.sampling.max_new_tokens = size_t(v);
  } else {
    r.gen.sampling.max_new_tokens = size_t(std::min(limits.default_max_tokens, C - P));
  }

  SamplerConfig& sp = r.gen.sampling;
  if (auto e = get_number(j, "temperature", 0.0, 2.0, sp.temperature)) return *e;
  if (auto e = get_number(j, "top_p", 0.0, 1.0, sp.top_p)) return *e;
  if (sp.top_p <= 0.0f) return bad("top_p", "'top_p' must be greater than 0");
  // Extensions beyond OpenAI's parameters (as vLLM and llama.cpp accept them).
  if (auto e = get_number(j, "min_p", 0.0, 1.0, sp.min_p)) return *e;
  if (auto e = get_number(j, "repetition_penalty", 0.01, 10.0, sp.repetition_penalty)) return *e;
  if (auto k = j.find("top_k"); k != j.end() && !k->is_null()) {
    if (!k->is_number_integer() || k->get<int64_t>() < 0 || k->get<int64_t>() > (int64_t(1) << 30))
      return bad("top_k", "'top_k' must be a non-negative integer", "invalid_type");
    sp.top_k = int(k->get<int64_t>());
  }
  if (auto ie = j.find("ignore_eos"); ie != j.end() && !ie->is_null()) {
    if (!ie->is_boolean()) return bad("ignore_eos", "'ignore_eos' must be a boolean", "invalid_type");
    sp.stop_at_eos = !ie->get<bool>();  // benchmarks and tests want a fixed answer length
  }
  if (auto lb = j.find("logit_bias"); lb != j.end() && !lb->is_null()) {
    if (!lb->is_object()) return bad("logit_bias", "'logit_bias' must be an object of token id -> bias", "invalid_type");
    for (const auto& [key, value] : lb->items()) {
      int64_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || id < 0 || id >= limits.vocab_size)
        return bad("logit_bias", fmt::format("logit_bias key '{}' is not a token id below {}", key, limits.vocab_size));
      if (!value.is_number() || value.get<double>() < -100.0 || value.get<double>() > 100.0)
        return bad("logit_bias", fmt::format("logit_bias['{}'] must be a number in [-100, 100]", key));
      sp.logit_bias.emplace_back(int32_t(id), value.get<float>());
    }
  }
  if (auto e = get_number(j, "presence_penalty", -2.0, 2.0, sp.presence_penalty)) return *e;
  if (auto e = get_number(j, "frequency_penalty", -2.0, 2.0, sp.frequency_penalty)) return *e;
  sp.seed = seed_fallback;
  if (auto s = j.find("seed"); s != j.end() && !s->is_null()) {
    if (!s->is_number_integer()) return bad("seed", "'seed' must be an integer", "invalid_type");
    sp.seed = s->is_number_unsigned() ? s->get<uint64_t>() : uint64_t(s->get<int64_t>());
  }
  if (auto s = j.find("stop"); s != j.end() && !s->is_null()) {
    if (s->is_string()) {
      sp.stop.push_back(s->get<std::string>());
    } else if (s->is_array() && s->size() <= 4) {
      for (const auto& v : *s) {
        if (!v.is_string()) return bad("stop", "'stop' must be a string or an array of up to 4 strings", "invalid_type");
        sp.stop.push_back(v.get<std::string>());
      }
    } else {
      return bad("stop", "'stop' must be a string or an array of up to 4 strings", "invalid_type");
    }
    for (const auto& s : sp.stop)
      if (s.empty()) return bad("stop", "stop strings must not be empty");
  }
  return r;
}

Parsed<Json> handle_tokenize(const std::string& body, const Tokenizer& tok) {
  auto parsed = parse_object(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  std::vector<int32_t> ids;
  if (j.contains("messages")) {
    std::vector<ChatMessage> messages;
    if (auto e = parse_messages(j, messages)) return *e;
    ids = chat_prompt_tokens(messages, tok);
  } else {
    auto p = j.find("prompt");
    if (p == j.end()) return bad("prompt", "missing required field 'prompt' (or 'messages')", "missing_field");
    if (!p->is_string()) return bad("prompt", "'prompt' must be a string", "invalid_type");
    bool add_special = tok.add_bos_token();
    if (auto a = j.find("add_special_tokens"); a != j.end()) {
      if (!a->is_boolean()) return bad("add_special_tokens", "'add_special_tokens' must be a boolean", "invalid_type");
      add_special = a->get<bool>();
    }
    ids = tok.encode(p->get<std::string>(), add_special);
  }
  return Json{{"tokens", ids}, {"count", ids.size()}};
}

Parsed<Json> handle_detokenize(const std::string& body, const Tokenizer& tok, int64_t vocab_size) {
  auto parsed = parse_object(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  auto t = j.find("tokens");
  if (t == j.end()) return bad("tokens", "missing required field 'tokens'", "missing_field");
  if (!t->is_array()) return bad("tokens", "'tokens' must be an array of integers", "invalid_type");
  std::vector<int32_t> ids;
  for (const auto& v : *t) {
    if (!v.is_number_integer()) return bad("tokens", "'tokens' must be an array of integers", "invalid_type");
    const int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : v.get<int64_t>();
    if (id < 0 || id >= vocab_size) return bad("tokens", fmt::format("token id {} is outside [0, {})", id, vocab_size));
    ids.push_back(int32_t(id));
  }
  return Json{{"text", tok.decode(ids)}};
}

Json usage_json(const StreamEvent& f) {
  return {{"prompt_tokens", f.prompt_tokens},
          {"completion_tokens", f.completion_tokens},
          {"total_tokens", f.prompt_tokens + f.completion_tokens}};
}

Json completion_response(const CompletionRequest& r, const std::string& id, int64_t created, const std::string& text,
                         const StreamEvent& f) {
  Json choice = {{"index", 0}, {"finish_reason", finish_reason_name(f.finish)}};
  if (r.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", id},
          {"object", r.chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", r.model},
          {"choices", Json::array({choice})},
          {"usage", usage_json(f)}};
}

Json stream_chunk(const CompletionRequest& r, const std::string& id, int64_t created, const std::string& text,
                  bool first, const char* finish_reason) {
  Json choice = {{"index", 0}, {"finish_reason", finish_reason ? Json(finish_reason) : Json(nullptr)}};
  if (r.chat) {
    Json delta = Json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !finish_reason)) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", id},
          {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", r.model},
          {"choices", Json::array({choice})}};
}

Json usage_chunk(const CompletionRequest& r, const std::string& id, int64_t created, const StreamEvent& f) {
  return {{"id", id},
          {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", r.model},
          {"choices", Json::array()},
          {"usage", usage_json(f)}};
}

}  // namespace dsv3::server
