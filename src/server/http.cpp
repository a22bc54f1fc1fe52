#include "server/http.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <ctime>
#include <random>

#include "core/rng.h"
#include "server/openai.h"
#include "server/web/index_html.h"

namespace dsv3::server {

namespace {

using namespace std::chrono_literals;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(error_json(e)), "application/json");
}

void send_json(httplib::Response& res, const Json& j) { res.set_content(dump(j), "application/json"); }

ApiError submit_error(const Engine::Submitted& s) {
  switch (s.error) {
    case SubmitError::QueueFull: return {429, s.message, "rate_limit_error", "", "queue_full"};
    case SubmitError::ShuttingDown: return {503, s.message, "server_error", "", "shutting_down"};
    case SubmitError::TooLarge: return {400, s.message, "invalid_request_error", "max_tokens", "context_length_exceeded"};
    case SubmitError::None: break;
  }
  return {500, "internal error", "server_error", "", ""};
}

// Routes label metrics; anything else is "other" so scanners cannot blow up the label set.
std::string route_label(const std::string& path) {
  for (const char* r : {"/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions",
                        "/tokenize", "/detokenize"})
    if (path == r) return path;
  return "other";
}

}  // namespace

struct HttpServer::Impl {
  Impl(Engine& e, Metrics& m, HttpOptions o) : engine(e), metrics(m), opt(std::move(o)) {
    std::random_device rd;
    seed_base = (uint64_t(rd()) << 32) ^ rd();
  }

  void completions(const httplib::Request& req, httplib::Response& res, bool chat);

  Engine& engine;
  Metrics& metrics;
  HttpOptions opt;
  httplib::Server svr;
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> counter{0};
  std::atomic<int> in_flight{0};  // generation responses not yet fully written
  uint64_t seed_base = 0;
  int listen_fd = -1;
};

// State of one generation response, shared by httplib's content provider and its releaser.
struct StreamState {
  CompletionRequest request;
  std::shared_ptr<RequestStream> stream;
  std::string id;
  int64_t created = 0;
  bool first = true;
  std::string text;  // non-streamed responses: the answer so far
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
};

void HttpServer::Impl::completions(const httplib::Request& req, httplib::Response& res, bool chat) {
  const uint64_t n = counter.fetch_add(1);
  ApiLimits limits{opt.model_name, engine.context_length(), opt.default_max_tokens, engine.config().vocab_size};
  auto parsed = parse_completion_request(req.body, chat, engine.tokenizer(), limits, splitmix64(seed_base + n));
  if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
  auto state = std::make_shared<StreamState>();
  state->request = std::move(std::get<CompletionRequest>(parsed));
  state->id = fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", splitmix64(seed_base ^ n));
  state->created = int64_t(std::time(nullptr));
  if (draining) return send_error(res, {503, "the server is shutting down", "server_error", "", "shutting_down"});
  auto submitted = engine.submit(state->request.gen);
  if (!submitted.stream) return send_error(res, submit_error(submitted));
  state->stream = submitted.stream;
  ++in_flight;

  Engine* eng = &engine;
  std::atomic<int>* flight = &in_flight;
  // Runs when the response ends for any reason; after a disconnect it frees the slot and the
  // cache pages at the engine's next step (a no-op for a finished request).
  auto release = [state, eng, flight](bool) {
    eng->cancel(state->stream);
    --*flight;
  };

  if (!state->request.stream) {
    // One JSON object at the end. Until then a space (JSON allows leading whitespace) goes out
    // every 100 ms: writing is the only way to notice a client that has gone, and without it a
    // vanished client's request would run to max_tokens.
    res.set_chunked_content_provider(
        "application/json",
        [state](size_t, httplib::DataSink& sink) {
          std::vector<StreamEvent> events;
          state->stream->wait_pop(events, 100ms);
          for (const auto& e : events) {
            state->text += e.text;
            if (e.done) {
              const std::string body = dump(completion_response(state->request, state->id, state->created, state->text, e));
              if (!sink.write(body.data(), body.size())) return false;
              sink.done();
              return true;
            }
          }
          if (std::chrono::steady_clock::now() - state->last_write < 100ms) return true;
          state->last_write = std::chrono::steady_clock::now();
          return sink.write(" ", 1);
        },
        release);
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) {
          state->last_write = std::chrono::steady_clock::now();
          return sink.write(s.data(), s.size());
        };
        std::vector<StreamEvent> events;
        if (!state->stream->wait_pop(events, 100ms)) {
          // An SSE comment now and then: writing is how a vanished client is noticed while
          // the request waits in the queue or in a long prefill.
          if (std::chrono::steady_clock::now() - state->last_write > 1s) return write(": keep-alive\n\n");
          return true;
        }
        const CompletionRequest& r = state->request;
        for (const auto& e : events) {
          if (!e.text.empty() || state->first) {
            if (!write("data: " + dump(stream_chunk(r, state->id, state->created, e.text, state->first, nullptr)) + "\n\n"))
              return false;
            state->first = false;
          }
          if (e.done) {
            if (!write("data: " + dump(stream_chunk(r, state->id, state->created, "", false, finish_reason_name(e.finish))) +
                       "\n\n"))
              return false;
            if (r.include_usage && !write("data: " + dump(usage_chunk(r, state->id, state->created, e)) + "\n\n"))
              return false;
            if (!write("data: [DONE]\n\n")) return false;
            sink.done();
            return true;
          }
        }
        return true;
      },
      release);
}

HttpServer::HttpServer(Engine& engine, Metrics& metrics, HttpOptions opt)
    : impl_(std::make_unique<Impl>(engine, metrics, std::move(opt))) {
  Impl& m = *impl_;
  httplib::Server& svr = m.svr;
  const int threads = std::max(2, m.opt.threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  // httplib listens with a backlog of 5, which resets connections under bursts of clients;
  // remember the socket so bind() can listen again with a deeper queue.
  svr.set_socket_options([&m](socket_t sock) {
    httplib::default_socket_options(sock);
    m.listen_fd = sock;
  });
  svr.set_payload_max_length(m.opt.max_body_bytes);
  svr.set_read_timeout(30s);
  svr.set_write_timeout(30s);

  svr.set_pre_routing_handler([&m](const httplib::Request& req, httplib::Response& res) {
    if (m.opt.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + m.opt.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, {401, "missing or invalid API key: send 'Authorization: Bearer <key>'", "invalid_request_error", "",
                     "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib's own errors (404 unknown route, 413 body too large, 400 bad request line) become
  // OpenAI error objects too; responses that already carry a body are left alone.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.status < 400) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e{res.status, fmt::format("HTTP {}", res.status), "invalid_request_error", "", ""};
    if (res.status == 404) e = {404, fmt::format("no route for {} {}", req.method, req.path), "invalid_request_error", "", "not_found"};
    if (res.status == 413) e = {413, "the request body is too large", "invalid_request_error", "", "payload_too_large"};
    send_error(res, e);
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, {500, "internal error", "server_error", "", ""});
  });
  // Counted before the response is written (the logger runs after), so a client that reads /metrics
  // right after its response always sees its own request.
  svr.set_post_routing_handler([&m](const httplib::Request& req, httplib::Response& res) {
    m.metrics.count_request(route_label(req.path), res.status);
  });

  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(kIndexHtml), "text/html; charset=utf-8");
  });
  svr.Get("/health", [&m](const httplib::Request&, httplib::Response& res) {
    if (m.draining) {
      res.status = 503;
      return send_json(res, {{"status", "draining"}});
    }
    send_json(res, {{"status", "ok"}});
  });
  svr.Get("/metrics", [&m](const httplib::Request&, httplib::Response& res) {
    res.set_content(m.metrics.render(m.engine.gauges()), "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/v1/models", [&m](const httplib::Request&, httplib::Response& res) {
    Json model = {{"id", m.opt.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "dsv3"},
                  {"context_length", m.engine.context_length()}};
    send_json(res, {{"object", "list"}, {"data", Json::array({model})}});
  });
  svr.Post("/v1/chat/completions",
           [&m](const httplib::Request& req, httplib::Response& res) { m.completions(req, res, true); });
  svr.Post("/v1/completions", [&m](const httplib::Request& req, httplib::Response& res) { m.completions(req, res, false); });
  svr.Post("/tokenize", [&m](const httplib::Request& req, httplib::Response& res) {
    auto r = handle_tokenize(req.body, m.engine.tokenizer());
    if (auto* e = std::get_if<ApiError>(&r)) return send_error(res, *e);
    send_json(res, std::get<Json>(r));
  });
  svr.Post("/detokenize", [&m](const httplib::Request& req, httplib::Response& res) {
    auto r = handle_detokenize(req.body, m.engine.tokenizer(), m.engine.config().vocab_size);
    if (auto* e = std::get_if<ApiError>(&r)) return send_error(res, *e);
    send_json(res, std::get<Json>(r));
  });
}

HttpServer::~HttpServer() { stop(); }

Result<int> HttpServer::bind(const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = impl_->svr.bind_to_any_port(host);
    if (bound <= 0) return Status::errorf("cannot bind {}: no free port", host);
  } else if (!impl_->svr.bind_to_port(host, port)) {
    return Status::errorf("cannot bind {}:{} (in use or not permitted)", host, port);
  }
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, SOMAXCONN);
  return bound;
}

void HttpServer::serve() { impl_->svr.listen_after_bind(); }

void HttpServer::begin_drain() {
  impl_->draining = true;
  impl_->engine.begin_shutdown();
}

void HttpServer::stop() { impl_->svr.stop(); }

int HttpServer::in_flight() const { return impl_->in_flight.load(); }

}  // namespace dsv3::server
