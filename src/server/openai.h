// The OpenAI-compatible API surface, independent of HTTP: JSON bodies -> validated request
// structs (every bad input becomes an ApiError with a 4xx status and an OpenAI error object),
// the DeepSeek-V3 chat template (spec §6), and the response / stream-chunk JSON builders.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "server/engine.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

using Json = nlohmann::json;

// {"error": {"message", "type", "param", "code"}} with the HTTP status it is sent with.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
};
Json error_json(const ApiError& e);

// A validated /v1/chat/completions or /v1/completions request, prompt already tokenized.
struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt_text;            // completions
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  GenerationRequest gen;
};

struct ApiLimits {
  std::string model_name;
  int64_t context_length = 0;
  int64_t default_max_tokens = 256;
  int64_t vocab_size = 0;  // bounds logit_bias token ids
};

template <typename T>
using Parsed = std::variant<T, ApiError>;

// Parses and validates a request body; tokenizes the prompt. `seed_fallback` seeds requests
// without a seed (the caller passes a fresh value per request).
Parsed<CompletionRequest> parse_completion_request(const std::string& body, bool chat, const Tokenizer& tok,
                                                   const ApiLimits& limits, uint64_t seed_fallback);

// The prompt tokens of a conversation: the model's chat template (spec §6) with the generation
// prompt, tokenized without adding another BOS.
std::vector<int32_t> chat_prompt_tokens(const std::vector<ChatMessage>& messages, const Tokenizer& tok);

// /tokenize: {"prompt": str} or {"messages": [...]} (rendered with the chat template);
// /detokenize: {"tokens": [int]}.
Parsed<Json> handle_tokenize(const std::string& body, const Tokenizer& tok);
Parsed<Json> handle_detokenize(const std::string& body, const Tokenizer& tok, int64_t vocab_size);

// Response JSON. `id` is the completion id, `created` Unix seconds.
Json completion_response(const CompletionRequest& r, const std::string& id, int64_t created, const std::string& text,
                         const StreamEvent& final_event);
// One stream chunk: text delta (and, for the first chat chunk, the role) or the finish reason.
Json stream_chunk(const CompletionRequest& r, const std::string& id, int64_t created, const std::string& text,
                  bool first, const char* finish_reason);
Json usage_chunk(const CompletionRequest& r, const std::string& id, int64_t created, const StreamEvent& final_event);
Json usage_json(const StreamEvent& final_event);

}  // namespace dsv3::server
