// Integration tests of the HTTP API against a live server on an ephemeral loopback port.
#include <gtest/gtest.h>

#include <future>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string>
#include <thread>

#include "server/server_fixture.h"

namespace dsv3::testing {
namespace {

json post_json(httplib::Client& cli, const std::string& path, const json& body, int expect_status = 200) {
  auto res = cli.Post(path.c_str(), body.dump(), "application/json");
  EXPECT_TRUE(res) << path;
  if (!res) return json();
  EXPECT_EQ(res->status, expect_status) << path << ": " << res->body;
  return json::parse(res->body, nullptr, false);
}

TEST(ServerApi, HealthModelsMetricsAndPage) {
  LiveServer server;
  auto cli = server.client();
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");

  auto models = cli.Get("/v1/models");
  ASSERT_TRUE(models);
  json m = json::parse(models->body);
  EXPECT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 1u);
  EXPECT_EQ(m["data"][0]["id"], "dsv3");
  EXPECT_EQ(m["data"][0]["context_length"], 512);

  auto page = cli.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("id=\"prompt\""), std::string::npos);
  EXPECT_NE(page->body.find("</html>"), std::string::npos);

  post_json(cli, "/v1/chat/completions", chat_body("Hi", 4, 1));
  auto metrics = cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  for (const char* line : {"dsv3_requests_total{route=\"/v1/chat/completions\",code=\"200\"} 1",
                           "dsv3_completion_tokens_total 4", "dsv3_queue_depth 0", "dsv3_kv_cache_pages_used 0",
                           "dsv3_time_to_first_token_seconds_count 1", "dsv3_time_per_output_token_seconds_count 3",
                           "dsv3_expert_tokens_total{layer=\"1\",expert=\"0\"}"})
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line << "\n" << metrics->body;
}

TEST(ServerApi, ChatCompletionIsReproducibleWithUsage) {
  LiveServer server;
  auto cli = server.client();
  json a = post_json(cli, "/v1/chat/completions", chat_body("Tell me a story", 12, 42));
  json b = post_json(cli, "/v1/chat/completions", chat_body("Tell me a story", 12, 42));
  json c = post_json(cli, "/v1/chat/completions", chat_body("Tell me a story", 12, 43));
  EXPECT_EQ(a["object"], "chat.completion");
  EXPECT_EQ(a["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(a["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(a["usage"]["completion_tokens"], 12);
  EXPECT_GT(a["usage"]["prompt_tokens"].get<int>(), 3);
  EXPECT_EQ(a["usage"]["total_tokens"], a["usage"]["prompt_tokens"].get<int>() + 12);
  EXPECT_EQ(a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]);
  EXPECT_NE(a["choices"][0]["message"]["content"], c["choices"][0]["message"]["content"]);

  // The prompt is the chat template's rendering: /tokenize of the same messages agrees.
  json t = post_json(cli, "/tokenize", {{"messages", json::array({{{"role", "user"}, {"content", "Tell me a story"}}})}});
  EXPECT_EQ(t["count"], a["usage"]["prompt_tokens"]);
}

TEST(ServerApi, CompletionsEndpoint) {
  LiveServer server;
  auto cli = server.client();
  json r = post_json(cli, "/v1/completions",
                     {{"model", "dsv3"}, {"prompt", "In the beginning"}, {"max_tokens", 6}, {"temperature", 0}});
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_TRUE(r["choices"][0]["text"].is_string());
  EXPECT_EQ(r["usage"]["completion_tokens"], 6);
  json t = post_json(cli, "/tokenize", {{"prompt", "In the beginning"}});
  EXPECT_EQ(r["usage"]["prompt_tokens"], t["count"]);
}

TEST(ServerApi, StreamingMatchesNonStreaming) {
  LiveServer server;
  auto cli = server.client();
  json plain = post_json(cli, "/v1/chat/completions", chat_body("Stream this", 16, 5));
  json body = chat_body("Stream this", 16, 5, true);
  body["stream_options"] = {{"include_usage", true}};
  SseResult s = post_sse(server.port(), "/v1/chat/completions", body);
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.well_formed);
  EXPECT_TRUE(s.done);
  ASSERT_GE(s.chunks.size(), 3u);
  EXPECT_EQ(s.chunks.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(s.chunks.front()["choices"][0]["delta"]["role"], "assistant");
  for (const auto& c : s.chunks) EXPECT_EQ(c["id"], s.chunks.front()["id"]);
  EXPECT_EQ(s.finish_reason, "length");
  EXPECT_EQ(s.chunks.back()["usage"]["completion_tokens"], 16);
  EXPECT_EQ(s.text, plain["choices"][0]["message"]["content"].get<std::string>());

  SseResult t = post_sse(server.port(), "/v1/completions",
                         {{"model", "dsv3"}, {"prompt", "abc"}, {"max_tokens", 5}, {"stream", true}, {"seed", 1}});
  EXPECT_TRUE(t.well_formed && t.done);
  EXPECT_EQ(t.chunks.front()["object"], "text_completion");
  EXPECT_EQ(t.finish_reason, "length");
}

TEST(ServerApi, StopStringEndsGenerationBeforeIt) {
  LiveServer server;
  auto cli = server.client();
  json greedy = chat_body("Count with me", 24, 1);
  greedy["temperature"] = 0;
  const std::string full = post_json(cli, "/v1/chat/completions", greedy)["choices"][0]["message"]["content"];
  ASSERT_GE(full.size(), 8u);
  const std::string stop = full.substr(full.size() / 2, 3);
  greedy["stop"] = json::array({stop, "never-appears"});
  json r = post_json(cli, "/v1/chat/completions", greedy);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["choices"][0]["message"]["content"], full.substr(0, full.find(stop)));
  greedy["stream"] = true;
  SseResult s = post_sse(server.port(), "/v1/chat/completions", greedy);
  EXPECT_EQ(s.text, full.substr(0, full.find(stop)));
  EXPECT_EQ(s.finish_reason, "stop");
}

TEST(ServerApi, LogitBiasAndIgnoreEos) {
  LiveServer server;
  auto cli = server.client();
  // A +100 bias on the end-of-sequence token ends the answer at its first token...
  json body = chat_body("Tell me a story", 12, 5);
  body["logit_bias"] = {{"1", 100}};
  json r = post_json(cli, "/v1/chat/completions", body);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["usage"]["completion_tokens"], 1);
  EXPECT_EQ(r["choices"][0]["message"]["content"], "");
  // ...unless ignore_eos asks for all max_tokens; streaming agrees.
  body["ignore_eos"] = true;
  r = post_json(cli, "/v1/chat/completions", body);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  SseResult s = post_sse(server.port(), "/v1/chat/completions", body);
  EXPECT_EQ(s.finish_reason, "length");
  EXPECT_EQ(s.chunks.back()["usage"]["completion_tokens"], 12);
  // A -100 bias on the first token of a greedy answer changes the answer.
  json greedy = chat_body("Count with me", 16, 1);
  greedy["temperature"] = 0;
  const std::string plain = post_json(cli, "/v1/chat/completions", greedy)["choices"][0]["message"]["content"];
  json t = post_json(cli, "/tokenize", {{"prompt", plain}, {"add_special_tokens", false}});
  ASSERT_FALSE(t["tokens"].empty());
  greedy["logit_bias"] = {{std::to_string(t["tokens"][0].get<int>()), -100}};
  const std::string biased = post_json(cli, "/v1/chat/completions", greedy)["choices"][0]["message"]["content"];
  EXPECT_NE(biased.substr(0, 1), plain.substr(0, 1)) << plain << " / " << biased;
}

TEST(ServerApi, TokenizeAndDetokenize) {
  LiveServer server;
  auto cli = server.client();
  json t = post_json(cli, "/tokenize", {{"prompt", "Hello world"}, {"add_special_tokens", false}});
  ASSERT_TRUE(t["tokens"].is_array());
  json d = post_json(cli, "/detokenize", {{"tokens", t["tokens"]}});
  EXPECT_EQ(d["text"], "Hello world");
  post_json(cli, "/detokenize", {{"tokens", {1, 5000}}}, 400);
  post_json(cli, "/detokenize", {{"tokens", "1 2"}}, 400);
  post_json(cli, "/tokenize", {{"prompt", 5}}, 400);
}

struct BadCase {
  std::string name, path, body;
  int status;
  std::string param;  // expected error.param ("" = null)
};

TEST(ServerApi, BadInputsGetOpenAiErrors) {
  ServerSetup setup;
  setup.http.max_body_bytes = 4096;
  LiveServer server(setup);
  auto cli = server.client();
  const std::string chat = "/v1/chat/completions", cmpl = "/v1/completions";
  const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
  const std::string long_prompt(3000, 'x');  // ~3000 tokens > 512 context, < 4096 bytes
  const std::vector<BadCase> cases = {
      {"malformed json", chat, "{\"model\": \"dsv3\",", 400, ""},
      {"not an object", chat, "[1,2,3]", 400, ""},
      {"empty body", chat, "", 400, ""},
      {"missing model", chat, "{" + msgs + "}", 400, "model"},
      {"model not a string", chat, "{\"model\":3," + msgs + "}", 400, "model"},
      {"unknown model", chat, "{\"model\":\"gpt-9\"," + msgs + "}", 404, "model"},
      {"missing messages", chat, R"({"model":"dsv3"})", 400, "messages"},
      {"messages not array", chat, R"({"model":"dsv3","messages":"hi"})", 400, "messages"},
      {"empty messages", chat, R"({"model":"dsv3","messages":[]})", 400, "messages"},
      {"bad role", chat, R"({"model":"dsv3","messages":[{"role":"robot","content":"x"}]})", 400, "messages[0].role"},
      {"content wrong type", chat, R"({"model":"dsv3","messages":[{"role":"user","content":7}]})", 400,
       "messages[0].content"},
      {"max_tokens string", chat, "{\"model\":\"dsv3\"," + msgs + ",\"max_tokens\":\"5\"}", 400, "max_tokens"},
      {"max_tokens zero", chat, "{\"model\":\"dsv3\"," + msgs + ",\"max_tokens\":0}", 400, "max_tokens"},
      {"max_tokens negative", chat, "{\"model\":\"dsv3\"," + msgs + ",\"max_tokens\":-3}", 400, "max_tokens"},
      {"max_tokens huge", chat, "{\"model\":\"dsv3\"," + msgs + ",\"max_tokens\":100000000000}", 400, "max_tokens"},
      {"max_tokens past context", chat, "{\"model\":\"dsv3\"," + msgs + ",\"max_tokens\":510}", 400, "max_tokens"},
      {"temperature string", chat, "{\"model\":\"dsv3\"," + msgs + ",\"temperature\":\"hot\"}", 400, "temperature"},
      {"temperature range", chat, "{\"model\":\"dsv3\"," + msgs + ",\"temperature\":3}", 400, "temperature"},
      {"top_p zero", chat, "{\"model\":\"dsv3\"," + msgs + ",\"top_p\":0}", 400, "top_p"},
      {"penalty range", chat, "{\"model\":\"dsv3\"," + msgs + ",\"presence_penalty\":5}", 400, "presence_penalty"},
      {"seed float", chat, "{\"model\":\"dsv3\"," + msgs + ",\"seed\":1.5}", 400, "seed"},
      {"stream not bool", chat, "{\"model\":\"dsv3\"," + msgs + ",\"stream\":\"yes\"}", 400, "stream"},
      {"stop wrong type", chat, "{\"model\":\"dsv3\"," + msgs + ",\"stop\":[1]}", 400, "stop"},
      {"ignore_eos not bool", chat, "{\"model\":\"dsv3\"," + msgs + ",\"ignore_eos\":1}", 400, "ignore_eos"},
      {"logit_bias array", chat, "{\"model\":\"dsv3\"," + msgs + ",\"logit_bias\":[1]}", 400, "logit_bias"},
      {"logit_bias bad id", chat, "{\"model\":\"dsv3\"," + msgs + ",\"logit_bias\":{\"x1\":1}}", 400, "logit_bias"},
      {"logit_bias id past vocab", chat, "{\"model\":\"dsv3\"," + msgs + ",\"logit_bias\":{\"1024\":1}}", 400,
       "logit_bias"},
      {"logit_bias range", chat, "{\"model\":\"dsv3\"," + msgs + ",\"logit_bias\":{\"3\":101}}", 400, "logit_bias"},
      {"n = 2", chat, "{\"model\":\"dsv3\"," + msgs + ",\"n\":2}", 400, "n"},
      {"prompt too long", cmpl, R"({"model":"dsv3","prompt":")" + long_prompt + "\"}", 400, "prompt"},
      {"prompt wrong type", cmpl, R"({"model":"dsv3","prompt":{"a":1}})", 400, "prompt"},
      {"missing prompt", cmpl, R"({"model":"dsv3"})", 400, "prompt"},
      {"oversized body", chat, "{\"model\":\"dsv3\",\"pad\":\"" + std::string(8000, 'a') + "\"}", 413, ""},
      {"unknown route", "/v1/nothing", "{}", 404, ""},
  };
  for (const auto& c : cases) {
    auto res = cli.Post(c.path.c_str(), c.body, "application/json");
    ASSERT_TRUE(res) << c.name;
    EXPECT_EQ(res->status, c.status) << c.name << ": " << res->body;
    json j = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << c.name << ": " << res->body;
    const json& e = j["error"];
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << c.name;
    EXPECT_TRUE(e["type"].is_string()) << c.name;
    EXPECT_TRUE(e.contains("code")) << c.name;
    if (c.param.empty()) {
      EXPECT_TRUE(e["param"].is_null()) << c.name << ": " << res->body;
    } else {
      EXPECT_EQ(e["param"], c.param) << c.name;
    }
  }
  // Still serving, with nothing leaked.
  post_json(cli, chat, chat_body("still there?", 3, 1));
  EXPECT_TRUE(server.wait_drained());
}

TEST(ServerApi, ApiKeyGuardsV1Routes) {
  ServerSetup setup;
  setup.http.api_key = "sekret";
  LiveServer server(setup);
  auto cli = server.client();
  auto none = cli.Get("/v1/models");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"]["code"], "invalid_api_key");
  auto wrong = cli.Get("/v1/models", {{"Authorization", "Bearer nope"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto post = cli.Post("/v1/chat/completions", chat_body("x", 2, 1).dump(), "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  auto right = cli.Get("/v1/models", {{"Authorization", "Bearer sekret"}});
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200);
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServerApi, DisconnectMidStreamFreesPagesAtOnce) {
  LiveServer server;
  json body = chat_body("a long answer please", 480, 9, true);
  body["ignore_eos"] = true;  // long whatever the sampled tokens
  SseResult s = post_sse(server.port(), "/v1/chat/completions", body, /*stop_after=*/3);
  EXPECT_FALSE(s.done);
  // The engine notices at its next write to the closed socket and releases the sequence.
  EXPECT_TRUE(server.wait_drained(std::chrono::milliseconds(3000)));
  auto cli = server.client();
  auto metrics = cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("dsv3_kv_cache_pages_used 0\n"), std::string::npos);
  // The 480-token answer was cut short.
  EXPECT_LT(server.engine().gauges().kv_pages_used, 1);
}

TEST(ServerApi, ConcurrentStreamsMatchSequentialRuns) {
  ServerSetup setup;
  setup.engine.max_batch = 8;
  setup.engine.prefill_chunk = 5;  // prompts span several steps while others decode
  LiveServer server(setup);
  const int n = 6;
  auto body = [](int i) {
    json b = chat_body(std::string("Question number ") + std::to_string(i) + (i % 2 ? " with a longer tail" : ""),
                       20 + 3 * i, 100 + uint64_t(i), true);
    b["temperature"] = 0.9;
    b["top_p"] = 0.95;
    b["frequency_penalty"] = 0.3;
    return b;
  };
  std::vector<std::string> sequential;
  for (int i = 0; i < n; ++i) sequential.push_back(post_sse(server.port(), "/v1/chat/completions", body(i)).text);
  std::vector<std::future<SseResult>> futures;
  for (int i = 0; i < n; ++i)
    futures.push_back(std::async(std::launch::async, [&, i] { return post_sse(server.port(), "/v1/chat/completions", body(i)); }));
  for (int i = 0; i < n; ++i) {
    SseResult r = futures[size_t(i)].get();
    EXPECT_TRUE(r.well_formed && r.done) << i;
    EXPECT_EQ(r.text, sequential[size_t(i)]) << "request " << i;
  }
  EXPECT_TRUE(server.wait_drained());
}

// A non-streamed request whose client goes away: the server's probe writes notice it and the
// engine drops the sequence instead of generating all of max_tokens for nobody.
TEST(ServerApi, DisconnectDuringNonStreamedRequestStopsIt) {
  ServerSetup setup;
  setup.config = server_test_config(/*dim=*/256, /*layers=*/4, /*context=*/2048);
  LiveServer server(setup);
  json body = chat_body("a very long answer please", 2000, 3);
  body["ignore_eos"] = true;
  const std::string text = body.dump();
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), ssize_t(request.size()));
  while (server.engine().gauges().active_sequences < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::close(fd);
  EXPECT_TRUE(server.wait_drained(std::chrono::milliseconds(5000)));
  auto cli = server.client();
  auto metrics = cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  const std::string key = "\ndsv3_completion_tokens_total ";
  const auto at = metrics->body.find(key);
  ASSERT_NE(at, std::string::npos);
  const long generated = std::stol(metrics->body.substr(at + key.size()));
  EXPECT_LT(generated, 2000) << "the request ran to max_tokens after its client left";
  EXPECT_NE(metrics->body.find("dsv3_kv_cache_pages_used 0\n"), std::string::npos);

  // Completed non-streamed answers still parse as one JSON object (leading spaces are JSON
  // whitespace) and carry the full answer.
  json slow = chat_body("take your time", 300, 4);
  slow["ignore_eos"] = true;
  json r = post_json(cli, "/v1/chat/completions", slow);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["completion_tokens"], 300);
}

TEST(ServerApi, FullQueueAnswers429AndDrainAnswers503) {
  ServerSetup setup;
  setup.config = server_test_config(/*dim=*/256, /*layers=*/4, /*context=*/512);  // slow enough to stay busy
  setup.engine.max_batch = 1;
  setup.engine.max_queue = 1;
  LiveServer server(setup);
  // A occupies the only batch slot, B the only queue place.
  auto a = std::async(std::launch::async, [&] {
    json body = chat_body("A", 500, 1, true);
    body["ignore_eos"] = true;  // long whatever the sampled tokens
    return post_sse(server.port(), "/v1/chat/completions", body, 4);
  });
  while (server.engine().gauges().active_sequences < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto b = std::async(std::launch::async, [&] {
    return post_sse(server.port(), "/v1/chat/completions", chat_body("B", 8, 2, true));
  });
  while (server.engine().gauges().queue_depth < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto cli = server.client();
  auto c = cli.Post("/v1/chat/completions", chat_body("C", 4, 3).dump(), "application/json");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, 429);
  json e = json::parse(c->body);
  EXPECT_EQ(e["error"]["code"], "queue_full");
  EXPECT_EQ(e["error"]["type"], "rate_limit_error");
  a.get();  // A disconnects after 4 events; B then runs to completion
  SseResult rb = b.get();
  EXPECT_TRUE(rb.done && rb.well_formed);
  EXPECT_TRUE(server.wait_drained());

  server.http().begin_drain();
  auto d = cli.Post("/v1/chat/completions", chat_body("D", 4, 3).dump(), "application/json");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 503);
  auto h = cli.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
}

TEST(ServerApi, RequestLargerThanThePoolIsRefusedUpFront) {
  ServerSetup setup;
  setup.engine.kv_cache_mb = 1;  // 2 layers x 40 floats x 4 B = 320 B per token: 3276 tokens
  setup.engine.page_size = 16;
  setup.config = server_test_config(64, 2, 8192);
  setup.config.yarn = {};
  LiveServer server(setup);
  auto cli = server.client();
  json body = chat_body("hi", 5000, 1);
  auto r = cli.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "context_length_exceeded");
  post_json(cli, "/v1/chat/completions", chat_body("hi", 8, 1));
}

}  // namespace
}  // namespace dsv3::testing
