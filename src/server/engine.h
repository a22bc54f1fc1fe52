// The generation engine behind the server: ONE thread owns the Transformer, the KV-cache pool
// and the scheduler (continuous batching). HTTP threads only submit requests and read their
// streams; they never touch the model.
//
// Each engine step: (1) drops cancelled sequences and returns their pages, (2) admits waiting
// requests in FIFO order while the batch has room and the pool can hold the request's whole
// prompt + max_tokens (pages are reserved up front, so an admitted request never runs out of
// cache), (3) runs ONE batched forward over every active sequence — a prefill chunk of at most
// `prefill_chunk` prompt tokens, or the one token it sampled last — (4) samples, detokenizes
// (UTF-8 safe, stop strings held back until they can no longer match), pushes text to each
// request's stream and (5) retires finished sequences. A request's tokens depend only on its
// prompt, parameters and seed: its prefill chunking does not depend on the rest of the batch.
//
// Admission control: the waiting queue is bounded (max_queue); submit() fails with QueueFull
// when it is full, with ShuttingDown after begin_shutdown(), and with TooLarge when the request
// could never fit the pool or the context.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "infer/sampler.h"
#include "model/config.h"
#include "model/weights.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

// sampling.max_new_tokens bounds the output; sampling.stop holds the stop strings (not part of
// the output); generation also ends at the tokenizer's EOS.
struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplerConfig sampling;
};

enum class FinishReason { None, Stop, Length, Cancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled"

struct StreamEvent {
  std::string text;   // text that became final with this event (may be empty)
  int32_t token = -1; // the generated token, -1 on the final event
  bool done = false;
  FinishReason finish = FinishReason::None;
  int64_t prompt_tokens = 0;      // final event only
  int64_t completion_tokens = 0;  // final event only
};

// One request's output channel: the engine pushes, an HTTP thread pops.
class RequestStream {
 public:
  // Moves every queued event to `out`, waiting up to `timeout` for the first; false if none came.
  bool wait_pop(std::vector<StreamEvent>& out, std::chrono::milliseconds timeout);
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Engine;
  void push(StreamEvent e);
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamEvent> events_;
  std::atomic<bool> cancelled_{false};
};

enum class SubmitError { None, QueueFull, ShuttingDown, TooLarge };

struct EngineOptions {
  int64_t kv_cache_mb = 256;
  int64_t page_size = 16;      // tokens per KV page
  int64_t max_queue = 64;      // waiting requests beyond the running batch
  int64_t max_batch = 16;      // sequences per forward
  int64_t prefill_chunk = 256; // prompt tokens per sequence per step
};

class Engine {
 public:
  // cfg, weights and metrics must outlive the Engine. Starts the engine thread.
  Engine(const ModelConfig& cfg, const ModelWeights& weights, Tokenizer tokenizer, const EngineOptions& opt,
         Metrics& metrics);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  struct Submitted {
    std::shared_ptr<RequestStream> stream;  // null on error
    SubmitError error = SubmitError::None;
    std::string message;
  };
  Submitted submit(GenerationRequest req);
  // Asks the engine to stop a request; its pages are released at the start of the next step.
  void cancel(const std::shared_ptr<RequestStream>& stream);

  // Refuses new requests; queued and running ones continue.
  void begin_shutdown();
  // Cancels every queued and running request.
  void cancel_all();
  // True when nothing is queued or running.
  bool idle() const;
  // Cancels what remains and joins the engine thread.
  void stop();

  EngineGauges gauges() const;
  int64_t context_length() const { return cfg_.max_position_embeddings; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  const ModelConfig& config() const { return cfg_; }

  struct Impl;

 private:
  void run();

  const ModelConfig& cfg_;
  Tokenizer tokenizer_;
  EngineOptions opt_;
  Metrics& metrics_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace dsv3::server
