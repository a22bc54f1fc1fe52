// Server metrics rendered as Prometheus text (exposition format 0.0.4): request counts by route
// and status, prompt/completion token counters, time-to-first-token and per-token latency
// histograms, and per-layer expert load. Gauges that live in the engine (queue depth, active
// sequences, KV-cache pages) are passed in at render time so there is one source of truth.
//
// Thread-safe: HTTP threads and the engine thread update it concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace dsv3::server {

// Cumulative histogram with fixed upper bounds (seconds); +Inf is implicit.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of metric `name`.
  void render(std::string& out, const std::string& name) const;
  int64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  int64_t count_ = 0;
};

// Engine-side gauges sampled when /metrics is scraped.
struct EngineGauges {
  int64_t queue_depth = 0;
  int64_t active_sequences = 0;
  int64_t kv_pages_used = 0;
  int64_t kv_pages_total = 0;
  int64_t kv_page_tokens = 0;
};

class Metrics {
 public:
  Metrics();

  void count_request(const std::string& route, int status);
  void add_prompt_tokens(int64_t n);
  void add_completion_tokens(int64_t n);
  void count_rejection(const std::string& reason);
  void observe_ttft(double seconds);
  void observe_token_latency(double seconds);
  // counts[e] tokens routed to expert e of decoder layer `layer` by one forward.
  void add_expert_load(int64_t layer, std::span<const int64_t> counts);

  std::string render(const EngineGauges& gauges) const;

  // Exposed for tests.
  int64_t completion_tokens() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, int64_t> rejections_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
  Histogram ttft_, token_latency_;
  std::map<int64_t, std::vector<int64_t>> expert_load_;  // layer -> tokens per expert
};

}  // namespace dsv3::server
