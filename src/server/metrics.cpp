#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace dsv3::server {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t b = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[b];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name) const {
  int64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
}

namespace {
// Latency buckets from 1 ms to 60 s: decode steps of small models take milliseconds, prefill of
// long prompts on CPU takes seconds.
std::vector<double> latency_bounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}
}  // namespace

Metrics::Metrics() : ttft_(latency_bounds()), token_latency_(latency_bounds()) {}

void Metrics::count_request(const std::string& route, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{route, status}];
}
void Metrics::add_prompt_tokens(int64_t n) {
  std::lock_guard lock(mu_);
  prompt_tokens_ += n;
}
void Metrics::add_completion_tokens(int64_t n) {
  std::lock_guard lock(mu_);
  completion_tokens_ += n;
}
void Metrics::count_rejection(const std::string& reason) {
  std::lock_guard lock(mu_);
  ++rejections_[reason];
}
void Metrics::observe_ttft(double seconds) {
  std::lock_guard lock(mu_);
  ttft_.observe(seconds);
}
void Metrics::observe_token_latency(double seconds) {
  std::lock_guard lock(mu_);
  token_latency_.observe(seconds);
}
void Metrics::add_expert_load(int64_t layer, std::span<const int64_t> counts) {
  std::lock_guard lock(mu_);
  auto& load = expert_load_[layer];
  if (load.size() < counts.size()) load.resize(counts.size(), 0);
  for (size_t e = 0; e < counts.size(); ++e) load[e] += counts[e];
}
int64_t Metrics::completion_tokens() const {
  std::lock_guard lock(mu_);
  return completion_tokens_;
}

std::string Metrics::render(const EngineGauges& g) const {
  std::lock_guard lock(mu_);
  std::string out;
  out += "# HELP dsv3_requests_total HTTP requests by route and status code.\n";
  out += "# TYPE dsv3_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += fmt::format("dsv3_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", key.first, key.second, n);
  out += "# HELP dsv3_rejected_requests_total Generation requests refused before admission, by reason.\n";
  out += "# TYPE dsv3_rejected_requests_total counter\n";
  for (const auto& [reason, n] : rejections_)
    out += fmt::format("dsv3_rejected_requests_total{{reason=\"{}\"}} {}\n", reason, n);
  out += "# HELP dsv3_prompt_tokens_total Prompt tokens of admitted requests.\n";
  out += "# TYPE dsv3_prompt_tokens_total counter\n";
  out += fmt::format("dsv3_prompt_tokens_total {}\n", prompt_tokens_);
  out += "# HELP dsv3_completion_tokens_total Tokens generated.\n";
  out += "# TYPE dsv3_completion_tokens_total counter\n";
  out += fmt::format("dsv3_completion_tokens_total {}\n", completion_tokens_);
  out += "# HELP dsv3_queue_depth Requests waiting for admission.\n# TYPE dsv3_queue_depth gauge\n";
  out += fmt::format("dsv3_queue_depth {}\n", g.queue_depth);
  out += "# HELP dsv3_active_sequences Sequences in the running batch.\n# TYPE dsv3_active_sequences gauge\n";
  out += fmt::format("dsv3_active_sequences {}\n", g.active_sequences);
  out += "# HELP dsv3_kv_cache_pages_used Pages of the latent KV cache pool held by sequences.\n";
  out += "# TYPE dsv3_kv_cache_pages_used gauge\n";
  out += fmt::format("dsv3_kv_cache_pages_used {}\n", g.kv_pages_used);
  out += "# HELP dsv3_kv_cache_pages_total Pages in the latent KV cache pool.\n# TYPE dsv3_kv_cache_pages_total gauge\n";
  out += fmt::format("dsv3_kv_cache_pages_total {}\n", g.kv_pages_total);
  out += "# HELP dsv3_kv_cache_usage_ratio Fraction of the KV cache pool in use.\n";
  out += "# TYPE dsv3_kv_cache_usage_ratio gauge\n";
  out += fmt::format("dsv3_kv_cache_usage_ratio {}\n",
                     g.kv_pages_total ? double(g.kv_pages_used) / double(g.kv_pages_total) : 0.0);
  out += "# HELP dsv3_time_to_first_token_seconds From submission to the first generated token.\n";
  out += "# TYPE dsv3_time_to_first_token_seconds histogram\n";
  ttft_.render(out, "dsv3_time_to_first_token_seconds");
  out += "# HELP dsv3_time_per_output_token_seconds Interval between consecutive tokens of a sequence.\n";
  out += "# TYPE dsv3_time_per_output_token_seconds histogram\n";
  token_latency_.render(out, "dsv3_time_per_output_token_seconds");
  out += "# HELP dsv3_expert_tokens_total Tokens routed to each routed expert, per MoE layer.\n";
  out += "# TYPE dsv3_expert_tokens_total counter\n";
  for (const auto& [layer, load] : expert_load_)
    for (size_t e = 0; e < load.size(); ++e)
      out += fmt::format("dsv3_expert_tokens_total{{layer=\"{}\",expert=\"{}\"}} {}\n", layer, e, load[e]);
  return out;
}

}  // namespace dsv3::server
