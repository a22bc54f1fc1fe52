// The HTTP front of `dsv3 serve` (cpp-httplib): routes, request limits, API-key check, SSE
// streaming and disconnect detection. Its threads only parse, enqueue and stream; the Engine's
// thread runs the model. httplib.h stays inside http.cpp.
//
// Routes: GET / (chat page), GET /health, GET /metrics, GET /v1/models,
// POST /v1/chat/completions, POST /v1/completions, POST /tokenize, POST /detokenize.
// Every error is an OpenAI error object with a 4xx status (429 queue full, 503 shutting down).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "server/engine.h"
#include "server/metrics.h"

namespace dsv3::server {

struct HttpOptions {
  std::string model_name = "dsv3";
  std::string api_key;                    // non-empty: /v1 routes need "Authorization: Bearer <key>"
  size_t max_body_bytes = size_t(1) << 20;
  int threads = 64;                       // connections served at once (each stream holds one)
  int64_t default_max_tokens = 256;       // when a request gives no max_tokens
};

class HttpServer {
 public:
  HttpServer(Engine& engine, Metrics& metrics, HttpOptions opt);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: a free port) and returns the port.
  Result<int> bind(const std::string& host, int port);
  // Serves until stop(); returns after in-flight handlers have finished.
  void serve();
  // Refuses new generation requests (503) and reports /health as draining.
  void begin_drain();
  // Closes the listening socket and ends responses still being written; safe from any thread.
  void stop();
  // Generation responses (streamed or not) that have not been completely written yet.
  int in_flight() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv3::server
