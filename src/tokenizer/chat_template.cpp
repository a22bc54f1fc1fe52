#include "tokenizer/chat_template.h"

#include "tokenizer/tokenizer.h"

namespace dsv3 {

ChatTemplateTokens ChatTemplateTokens::for_tokenizer(const Tokenizer& tokenizer) {
  ChatTemplateTokens t;
  if (auto bos = tokenizer.id_to_token(tokenizer.bos_id())) t.bos = *bos;
  if (auto eos = tokenizer.id_to_token(tokenizer.eos_id())) t.eos = *eos;
  return t;
}

// Follows the Jinja template statement by statement (see deepseek_v3_chat_template_jinja()).
std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const ChatTemplateTokens& k) {
  std::string system_prompt;
  bool first_system = true;
  for (const auto& m : messages) {
    if (m.role != "system") continue;
    if (!first_system) system_prompt += "\n\n";
    system_prompt += m.content.value_or("");
    first_system = false;
  }
  std::string out = k.bos + system_prompt;
  bool is_first = false;  // "a tool call has been rendered" (the template's ns.is_first)
  bool is_tool = false;   // the previous message was tool output
  bool is_output_first = true;
  auto render_call = [&](const ToolCall& c) {
    return k.tool_call_begin + c.type + k.tool_sep + c.name + "\n```json\n" + c.arguments + "\n```" + k.tool_call_end;
  };
  for (const auto& m : messages) {
    if (m.role == "user") {
      is_tool = false;
      out += k.user + m.content.value_or("");
    } else if (m.role == "assistant" && !m.content) {
      is_tool = false;
      for (const auto& call : m.tool_calls) {
        if (!is_first) {
          out += k.assistant + k.tool_calls_begin + render_call(call);
          is_first = true;
        } else {
          out += "\n" + render_call(call) + k.tool_calls_end + k.eos;
        }
      }
    } else if (m.role == "assistant") {
      if (is_tool) {
        out += k.tool_outputs_end + *m.content + k.eos;
        is_tool = false;
      } else {
        out += k.assistant + *m.content + k.eos;
      }
    } else if (m.role == "tool") {
      is_tool = true;
      if (is_output_first) {
        out += k.tool_outputs_begin + k.tool_output_begin + m.content.value_or("") + k.tool_output_end;
        is_output_first = false;
      } else {
        out += "\n" + k.tool_output_begin + m.content.value_or("") + k.tool_output_end;
      }
    }
  }
  if (is_tool) out += k.tool_outputs_end;
  if (add_generation_prompt && !is_tool) out += k.assistant;
  return out;
}

const std::string& deepseek_v3_chat_template_jinja() {
  // Verbatim from DeepSeek-V3's tokenizer_config.json.
  static const std::string kTemplate =
      "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
      "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}"
      "{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}"
      "{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}"
      "{%- else %}{% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}{%- endif %}"
      "{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}"
      "{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}"
      "{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}"
      "{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}"
      "{%- set ns.is_first = true -%}{%- else %}{{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}"
      "{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}"
      "{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}"
      "{%- set ns.is_tool = false -%}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}"
      "{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}"
      "{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}"
      "{%- set ns.is_output_first = false %}{%- else %}{{'\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}"
      "{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}"
      "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}";
  return kTemplate;
}

}  // namespace dsv3
