// The chat format against the rendered examples of spec §6 (jinja2 on the shipped template).
#include <gtest/gtest.h>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_test_util.h"

namespace dsv3 {
namespace {

ChatMessage msg(std::string role, std::string content) { return {std::move(role), std::move(content), {}}; }
ChatMessage calls(std::vector<ToolCall> c) { return {"assistant", std::nullopt, std::move(c)}; }

TEST(ChatTemplate, SystemUserAssistantWithGenerationPrompt) {
  const std::vector<ChatMessage> m = {msg("system", "S1"), msg("system", "S2"), msg("user", "Hi"),
                                      msg("assistant", "Hello!"), msg("user", "2+2?")};
  EXPECT_EQ(render_chat(m, true),
            "<｜begin▁of▁sentence｜>S1\n\nS2<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>2+2?"
            "<｜Assistant｜>");
  EXPECT_EQ(render_chat({msg("user", "Hi")}, false), "<｜begin▁of▁sentence｜><｜User｜>Hi");
  EXPECT_EQ(render_chat({}, true), "<｜begin▁of▁sentence｜><｜Assistant｜>");
}

TEST(ChatTemplate, SingleToolCallEndingOnToolOutput) {
  const std::vector<ChatMessage> m = {msg("user", "Q"), calls({{"function", "a", "{}"}}), msg("tool", "R1")};
  EXPECT_EQ(render_chat(m, true),
            "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
            "<｜tool▁sep｜>a\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>R1"
            "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");
}

TEST(ChatTemplate, TwoToolCallsTwoOutputsThenAnswer) {
  const std::vector<ChatMessage> m = {msg("user", "Q"),
                                      calls({{"function", "a", "{}"}, {"function", "b", "{}"}}),
                                      msg("tool", "R1"), msg("tool", "R2"), msg("assistant", "Done")};
  EXPECT_EQ(render_chat(m, true),
            "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
            "<｜tool▁sep｜>a\n```json\n{}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>b\n"
            "```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜>"
            "<｜tool▁output▁begin｜>R1<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>R2<｜tool▁output▁end｜>"
            "<｜tool▁outputs▁end｜>Done<｜end▁of▁sentence｜><｜Assistant｜>");
}

TEST(ChatTemplate, JinjaSourceIsTheShippedOne) {
  const auto config = testing::read_json_file(testing::deepseek_v3_tokenizer_dir() + "/tokenizer_config.json");
  EXPECT_EQ(config["chat_template"].get<std::string>(), deepseek_v3_chat_template_jinja());
}

TEST(ChatTemplate, RenderedMarkersTokenizeAsSingleIds) {
  const Tokenizer* tok = testing::deepseek_v3_tokenizer();
  ASSERT_NE(tok, nullptr);
  const auto text = render_chat({msg("user", "Hi"), msg("assistant", "Yo")}, true, ChatTemplateTokens::for_tokenizer(*tok));
  const auto ids = tok->encode(text);
  const std::vector<int32_t> want_head = {0, 128803};
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 2), want_head);
  EXPECT_EQ(ids.back(), 128804);
  EXPECT_EQ(ids[ids.size() - 2], 1);
  EXPECT_EQ(tok->decode(ids), text);
}

}  // namespace
}  // namespace dsv3
