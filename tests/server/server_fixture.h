// A live server for the integration tests: a small random-weight model, the trained tokenizer
// fixture, an Engine and an HttpServer on an ephemeral loopback port, plus SSE helpers.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "model/config.h"
#include "model/random_weights.h"
#include "server/engine.h"
#include "server/http.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::testing {

using nlohmann::json;

inline std::string trained_tokenizer_dir() { return std::string(DSV3_TEST_DATA_DIR) + "/golden/tokenizer/trained"; }

// DeepSeek-V3 shape in miniature: one dense and `layers - 1` MoE layers with group-limited
// routing. The vocabulary covers the trained tokenizer (1005 tokens).
inline ModelConfig server_test_config(int64_t dim = 64, int64_t layers = 2, int64_t context = 512) {
  ModelConfig c;
  c.model_type = "deepseek_v3";
  c.vocab_size = 1024;
  c.dim = dim;
  c.inter_dim = dim * 3 / 2;
  c.moe_inter_dim = dim / 2;
  c.n_layers = layers;
  c.n_dense_layers = 1;
  c.n_heads = 4;
  c.q_lora_rank = dim / 2;
  c.kv_lora_rank = 32;
  c.qk_nope_head_dim = 16;
  c.qk_rope_head_dim = 8;
  c.v_head_dim = 16;
  c.n_routed_experts = 8;
  c.n_shared_experts = 1;
  c.n_activated_experts = 2;
  c.n_expert_groups = 2;
  c.n_limited_groups = 1;
  c.route_scale = 2.5;
  c.max_position_embeddings = context;
  c.bos_token_id = 0;
  c.eos_token_id = 1;
  return c;
}

struct ServerSetup {
  ModelConfig config = server_test_config();
  server::EngineOptions engine;
  server::HttpOptions http;
};

class LiveServer {
 public:
  explicit LiveServer(const ServerSetup& setup = {}) : cfg_(setup.config) {
    RandomWeightsOptions ro;
    ro.seed = 7;
    ro.std = 0.3f;  // peaked logits: varied but not uniform text
    weights_ = std::make_unique<RandomWeights>(cfg_, ro);
    auto tok = Tokenizer::load(trained_tokenizer_dir());
    if (!tok.is_ok()) throw std::runtime_error(tok.message());
    engine_ = std::make_unique<server::Engine>(cfg_, weights_->weights(), *tok, setup.engine, metrics_);
    http_ = std::make_unique<server::HttpServer>(*engine_, metrics_, setup.http);
    auto port = http_->bind("127.0.0.1", 0);
    if (!port.is_ok()) throw std::runtime_error(port.message());
    port_ = *port;
    thread_ = std::thread([this] { http_->serve(); });
  }
  ~LiveServer() {
    http_->stop();
    thread_.join();
    engine_->stop();
  }

  int port() const { return port_; }
  server::Engine& engine() { return *engine_; }
  server::HttpServer& http() { return *http_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(std::chrono::seconds(60));
    return c;
  }
  // Waits until no sequence runs and every KV page is back in the pool.
  bool wait_drained(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto g = engine_->gauges();
      if (g.active_sequences == 0 && g.queue_depth == 0 && g.kv_pages_used == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  ModelConfig cfg_;
  std::unique_ptr<RandomWeights> weights_;
  server::Metrics metrics_;
  std::unique_ptr<server::Engine> engine_;
  std::unique_ptr<server::HttpServer> http_;
  int port_ = 0;
  std::thread thread_;
};

// A parsed SSE response: the JSON of every `data:` event before [DONE].
struct SseResult {
  int status = 0;
  std::vector<json> chunks;
  bool done = false;        // saw data: [DONE] as the last event
  bool well_formed = true;  // every event a comment or data line, JSON parsed, nothing after [DONE]
  std::string text;         // concatenated content deltas / text
  std::string finish_reason;
  int error = 0;  // httplib::Error of the request (0 = Success)
  size_t bytes = 0;
};

inline void parse_sse_event(const std::string& event, SseResult& r) {
  if (event.empty() || event[0] == ':') return;  // comment (keep-alive)
  if (event.rfind("data: ", 0) != 0 || r.done) {
    r.well_formed = false;
    return;
  }
  const std::string data = event.substr(6);
  if (data == "[DONE]") {
    r.done = true;
    return;
  }
  json j = json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.contains("choices")) {
    r.well_formed = false;
    return;
  }
  for (const auto& c : j["choices"]) {
    if (c.contains("delta") && c["delta"].contains("content")) r.text += c["delta"]["content"].get<std::string>();
    if (c.contains("text")) r.text += c["text"].get<std::string>();
    if (!c["finish_reason"].is_null()) r.finish_reason = c["finish_reason"].get<std::string>();
  }
  r.chunks.push_back(std::move(j));
}

// POSTs `body` and reads the event stream; stop_after > 0 disconnects after that many events.
inline SseResult post_sse(int port, const std::string& path, const json& body, int stop_after = 0,
                          const httplib::Headers& headers = {}) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(std::chrono::seconds(60));
  SseResult r;
  std::string buffer;
  int events = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = headers;
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    r.bytes += n;
    buffer.append(data, n);
    size_t cut;
    while ((cut = buffer.find("\n\n")) != std::string::npos) {
      parse_sse_event(buffer.substr(0, cut), r);
      buffer.erase(0, cut + 2);
      if (stop_after > 0 && ++events >= stop_after) return false;
    }
    return true;
  };
  auto res = cli.send(req);
  if (res) r.status = res->status;
  r.error = int(res.error());
  if (!buffer.empty()) r.well_formed = false;
  return r;
}

inline json chat_body(const std::string& user, int64_t max_tokens, uint64_t seed, bool stream = false) {
  return {{"model", "dsv3"},
          {"messages", json::array({{{"role", "user"}, {"content", user}}})},
          {"max_tokens", max_tokens},
          {"seed", seed},
          {"stream", stream}};
}

}  // namespace dsv3::testing
