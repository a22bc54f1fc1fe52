// The DeepSeek-V3 chat format rendered in code (the Jinja template of tokenizer_config.json,
// spec §6), including tool calls and tool outputs with the template's exact quirks: the
// "first tool call" and "first tool output" flags are never reset, so only the first call of a
// conversation opens with <｜Assistant｜><｜tool▁calls▁begin｜> and a lone call is never closed;
// every later call is followed by <｜tool▁calls▁end｜><｜end▁of▁sentence｜>.
// The result starts with BOS: tokenize it without adding another one.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace dsv3 {

class Tokenizer;

struct ToolCall {
  std::string type = "function";
  std::string name;
  std::string arguments;  // JSON text, inserted verbatim
};

struct ChatMessage {
  std::string role;                    // "system", "user", "assistant", "tool" (others ignored)
  std::optional<std::string> content;  // an assistant message without content carries tool_calls
  std::vector<ToolCall> tool_calls;
};

// The marker strings the template writes (DeepSeek-V3's by default).
struct ChatTemplateTokens {
  std::string bos = "<｜begin▁of▁sentence｜>";
  std::string eos = "<｜end▁of▁sentence｜>";
  std::string user = "<｜User｜>";
  std::string assistant = "<｜Assistant｜>";
  std::string tool_calls_begin = "<｜tool▁calls▁begin｜>";
  std::string tool_calls_end = "<｜tool▁calls▁end｜>";
  std::string tool_call_begin = "<｜tool▁call▁begin｜>";
  std::string tool_call_end = "<｜tool▁call▁end｜>";
  std::string tool_outputs_begin = "<｜tool▁outputs▁begin｜>";
  std::string tool_outputs_end = "<｜tool▁outputs▁end｜>";
  std::string tool_output_begin = "<｜tool▁output▁begin｜>";
  std::string tool_output_end = "<｜tool▁output▁end｜>";
  std::string tool_sep = "<｜tool▁sep｜>";

  // The defaults with bos/eos replaced by the tokenizer's own tokens (when it has them).
  static ChatTemplateTokens for_tokenizer(const Tokenizer& tokenizer);
};

std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const ChatTemplateTokens& tokens = ChatTemplateTokens{});

// The Jinja source of the DeepSeek-V3 template, written into tokenizer_config.json by the trainer
// so that other tools render the same format.
const std::string& deepseek_v3_chat_template_jinja();

}  // namespace dsv3
