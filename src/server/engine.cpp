#include "server/engine.h"

#include <algorithm>
#include <unordered_map>

#include "core/log.h"
#include "model/kv_cache.h"
#include "model/moe.h"
#include "model/transformer.h"

namespace dsv3::server {

using Clock = std::chrono::steady_clock;

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::None: break;
  }
  return "none";
}

bool RequestStream::wait_pop(std::vector<StreamEvent>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  for (auto& e : events_) out.push_back(std::move(e));
  events_.clear();
  return true;
}

void RequestStream::push(StreamEvent e) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

namespace {

// Runs the routed experts locally and adds each MoE layer's routing counts to the metrics.
class CountingDispatcher final : public MoeDispatcher {
 public:
  CountingDispatcher(const ModelWeights& w, Metrics& metrics) : metrics_(metrics) {
    for (size_t l = 0; l < w.layers.size(); ++l)
      if (w.layers[l].is_moe) layer_of_[&w.layers[l].moe] = int64_t(l);
  }
  void routed_experts(float* y, const float* x, int64_t N, const Routing& routing, const MoeWeights& w) override {
    local_.routed_experts(y, x, N, routing, w);
    auto it = layer_of_.find(&w);
    if (it != layer_of_.end()) metrics_.add_expert_load(it->second, local_.last_counts());
  }

 private:
  LocalMoeDispatcher local_;
  Metrics& metrics_;
  std::unordered_map<const MoeWeights*, int64_t> layer_of_;
};

struct Waiting {
  std::shared_ptr<RequestStream> stream;
  GenerationRequest req;
  Clock::time_point submitted;
};

struct Sequence {
  Sequence(KvPool& pool, Waiting w, const Tokenizer& tok)
      : stream(std::move(w.stream)), req(std::move(w.req)), submitted(w.submitted), cache(pool),
        decoder(tok, /*skip_special=*/true), sampler(req.sampling) {}
  int64_t max_tokens() const { return int64_t(req.sampling.max_new_tokens); }
  std::shared_ptr<RequestStream> stream;
  GenerationRequest req;
  Clock::time_point submitted, last_token_time;
  SequenceCache cache;
  StreamDecoder decoder;
  Sampler sampler;
  int64_t prefilled = 0;            // prompt tokens already in the cache
  std::vector<int32_t> generated;   // tokens sampled
  int32_t last = -1;       // the last sampled token, fed by the next decode step
  std::string held;        // decoded text not yet sent (could start a stop string)
  bool finished = false;
};

}  // namespace

struct Engine::Impl {
  Impl(const ModelConfig& cfg, const ModelWeights& weights, const EngineOptions& opt, Metrics& metrics)
      : dispatcher(weights, metrics), model(cfg, weights, &dispatcher),
        pool(KvPool::with_bytes(model.cache_layers(), model.cache_row_dim(), opt.page_size,
                                opt.kv_cache_mb * (int64_t(1) << 20))) {}

  CountingDispatcher dispatcher;
  Transformer model;
  std::unique_ptr<KvPool> pool;

  mutable std::mutex mu;  // guards everything below
  std::condition_variable cv;
  std::deque<Waiting> waiting;
  bool stopping = false, shutting_down = false, cancel_everything = false;
  int64_t n_active = 0, pages_used = 0;

  // Engine thread only.
  std::vector<std::unique_ptr<Sequence>> active;
};

Engine::Engine(const ModelConfig& cfg, const ModelWeights& weights, Tokenizer tokenizer, const EngineOptions& opt,
               Metrics& metrics)
    : cfg_(cfg), tokenizer_(std::move(tokenizer)), opt_(opt), metrics_(metrics),
      impl_(std::make_unique<Impl>(cfg, weights, opt, metrics)) {
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() { stop(); }

Engine::Submitted Engine::submit(GenerationRequest req) {
  Submitted out;
  const int64_t max_tokens = int64_t(req.sampling.max_new_tokens);
  const int64_t need = int64_t(req.prompt.size()) + max_tokens;
  const int64_t pool_tokens = impl_->pool->max_pages() * impl_->pool->page_size();
  if (req.prompt.empty() || max_tokens < 1 || need > context_length() || need > pool_tokens) {
    out.error = SubmitError::TooLarge;
    out.message = fmt::format("the request needs {} tokens of cache (prompt {} + max_tokens {}); the context holds "
                              "{} and the KV cache pool {}",
                              need, req.prompt.size(), max_tokens, context_length(), pool_tokens);
    metrics_.count_rejection("too_large");
    return out;
  }
  std::lock_guard lock(impl_->mu);
  if (impl_->shutting_down || impl_->stopping) {
    out.error = SubmitError::ShuttingDown;
    out.message = "the server is shutting down";
    metrics_.count_rejection("shutting_down");
    return out;
  }
  if (int64_t(impl_->waiting.size()) >= opt_.max_queue) {
    out.error = SubmitError::QueueFull;
    out.message = fmt::format("the server is busy: {} requests are already waiting; retry later", opt_.max_queue);
    metrics_.count_rejection("queue_full");
    return out;
  }
  out.stream = std::make_shared<RequestStream>();
  impl_->waiting.push_back({out.stream, std::move(req), Clock::now()});
  impl_->cv.notify_all();
  return out;
}

void Engine::cancel(const std::shared_ptr<RequestStream>& stream) {
  if (!stream) return;
  stream->cancelled_ = true;
  std::lock_guard lock(impl_->mu);
  impl_->cv.notify_all();
}

void Engine::begin_shutdown() {
  std::lock_guard lock(impl_->mu);
  impl_->shutting_down = true;
}

void Engine::cancel_all() {
  std::lock_guard lock(impl_->mu);
  impl_->cancel_everything = true;
  for (auto& w : impl_->waiting) w.stream->cancelled_ = true;
  impl_->cv.notify_all();
}

bool Engine::idle() const {
  std::lock_guard lock(impl_->mu);
  return impl_->waiting.empty() && impl_->n_active == 0;
}

void Engine::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

EngineGauges Engine::gauges() const {
  std::lock_guard lock(impl_->mu);
  return {int64_t(impl_->waiting.size()), impl_->n_active, impl_->pages_used, impl_->pool->max_pages(),
          impl_->pool->page_size()};
}

void Engine::run() {
  Impl& m = *impl_;
  const int64_t V = cfg_.vocab_size;
  const int32_t eos = tokenizer_.eos_id() >= 0 ? tokenizer_.eos_id() : int32_t(cfg_.eos_token_id);
  std::vector<float> logits;
  std::vector<SeqChunk> batch;

  // A sequence's final event is published only after its pages are back in the pool and the gauges
  // say so: a client that reads /metrics right after its response must see the freed pages.
  std::vector<std::pair<std::shared_ptr<RequestStream>, StreamEvent>> finals;
  auto finish = [&](Sequence& s, FinishReason reason, std::string tail) {
    StreamEvent e;
    e.text = std::move(tail);
    e.done = true;
    e.finish = reason;
    e.prompt_tokens = int64_t(s.req.prompt.size());
    e.completion_tokens = int64_t(s.generated.size());
    s.cache.release();
    s.finished = true;
    finals.emplace_back(s.stream, std::move(e));
  };
  auto publish_finals = [&] {
    for (auto& [stream, e] : finals) stream->push(std::move(e));
    finals.clear();
  };
  // Handles generated token `tok` of sequence s: stop conditions, detokenization, stop strings.
  auto emit = [&](Sequence& s, int32_t tok) {
    const auto now = Clock::now();
    const bool first = s.generated.empty();
    const double dt = std::chrono::duration<double>(now - (first ? s.submitted : s.last_token_time)).count();
    if (first) metrics_.observe_ttft(dt); else metrics_.observe_token_latency(dt);
    s.last_token_time = now;
    s.generated.push_back(tok);
    metrics_.add_completion_tokens(1);
    s.last = tok;
    const dsv3::FinishReason limit = finish_reason(s.req.sampling, tok, s.generated.size(), eos);
    if (limit == dsv3::FinishReason::kEos) return finish(s, FinishReason::Stop, s.held + s.decoder.flush());
    s.held += s.decoder.push(tok);
    // Text that could still turn into a stop string is held back until it cannot.
    const StopCheck stop = find_stop(s.held, s.req.sampling.stop);
    if (stop.stopped) return finish(s, FinishReason::Stop, s.held.substr(0, stop.safe_length));
    StreamEvent e;
    e.token = tok;
    e.text = s.held.substr(0, stop.safe_length);
    s.held.erase(0, stop.safe_length);
    s.stream->push(std::move(e));
    if (limit == dsv3::FinishReason::kLength) finish(s, FinishReason::Length, s.held + s.decoder.flush());
  };

  for (;;) {
    bool drained = false, idle = false;
    {
      std::unique_lock lock(m.mu);
      m.cv.wait(lock, [&] { return m.stopping || !m.waiting.empty() || !m.active.empty(); });
      if (m.stopping || m.cancel_everything) {
        for (auto& s : m.active) s->stream->cancelled_ = true;
        for (auto& w : m.waiting) w.stream->cancelled_ = true;
        m.cancel_everything = false;
      }
      // Retire cancelled sequences first so their pages serve this step's admissions.
      for (auto& s : m.active)
        if (s->stream->cancelled()) finish(*s, FinishReason::Cancelled, "");
      std::erase_if(m.active, [](const auto& s) { return s->finished; });
      while (!m.waiting.empty()) {
        Waiting& w = m.waiting.front();
        if (w.stream->cancelled()) {
          StreamEvent e;
          e.done = true;
          e.finish = FinishReason::Cancelled;
          e.prompt_tokens = int64_t(w.req.prompt.size());
          w.stream->push(std::move(e));
          m.waiting.pop_front();
          continue;
        }
        if (int64_t(m.active.size()) >= opt_.max_batch) break;
        auto s = std::make_unique<Sequence>(*m.pool, std::move(w), tokenizer_);
        if (!s->cache.reserve(int64_t(s->req.prompt.size()) + s->max_tokens()).is_ok()) {
          w = Waiting{std::move(s->stream), std::move(s->req), s->submitted};  // put it back, wait for pages
          break;
        }
        metrics_.add_prompt_tokens(int64_t(s->req.prompt.size()));
        m.active.push_back(std::move(s));
        m.waiting.pop_front();
      }
      m.n_active = int64_t(m.active.size());
      m.pages_used = m.pool->pages_in_use();
      drained = m.stopping && m.active.empty() && m.waiting.empty();
      idle = m.active.empty();
    }
    publish_finals();
    if (drained) return;
    if (idle) continue;

    // One batched forward: a prefill chunk or one decode token per sequence.
    batch.clear();
    std::vector<int64_t> fed(m.active.size());
    for (size_t i = 0; i < m.active.size(); ++i) {
      Sequence& s = *m.active[i];
      const int64_t P = int64_t(s.req.prompt.size());
      if (s.prefilled < P) {
        fed[i] = std::min(opt_.prefill_chunk, P - s.prefilled);
        batch.push_back({&s.cache, s.req.prompt.data() + s.prefilled, fed[i]});
      } else {
        fed[i] = 0;
        batch.push_back({&s.cache, &s.last, 1});
      }
    }
    logits.resize(batch.size() * size_t(V));
    Status st = m.model.forward(batch, logits.data());
    if (!st.is_ok()) {
      // Submission checks make this unreachable for valid models; fail the batch, keep serving.
      DSV3_LOG_ERROR("engine: forward failed: {}", st.message());
      for (auto& s : m.active) finish(*s, FinishReason::Cancelled, "");
    } else {
      for (size_t i = 0; i < m.active.size(); ++i) {
        Sequence& s = *m.active[i];
        s.prefilled += fed[i];
        if (s.prefilled < int64_t(s.req.prompt.size())) continue;  // mid-prompt: no token yet
        if (s.stream->cancelled()) continue;
        std::span<float> row(logits.data() + i * size_t(V), size_t(V));
        emit(s, s.sampler.sample(row, s.req.prompt, s.generated));
      }
    }
    {
      std::lock_guard lock(m.mu);
      std::erase_if(m.active, [](const auto& s) { return s->finished; });
      m.n_active = int64_t(m.active.size());
      m.pages_used = m.pool->pages_in_use();
    }
    publish_finals();
  }
}

}  // namespace dsv3::server
