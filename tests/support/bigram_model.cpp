#include "support/bigram_model.h"

#include <cmath>
#include <vector>

#include "core/rng.h"

namespace dsv3::testing {

BigramModel::BigramModel(int64_t vocab, int64_t dim, int64_t n_experts)
    : vocab_(vocab), dim_(dim), n_experts_(n_experts) {
  params_.add("model.embed_tokens.weight", {vocab, dim}, true);
  params_.add("lm_head.weight", {vocab, dim}, true);
  params_.add("lm_head.bias", {vocab}, false);
  params_.finalize();
  biases_.assign(1, std::vector<float>(size_t(n_experts), 0.0f));
  counts_.assign(size_t(n_experts), 0);
}

void BigramModel::init(uint64_t seed, float std) {
  Rng rng(seed, 1);
  for (ParamTensor& t : params_.tensors())
    for (int64_t i = 0; i < t.numel; ++i) t.data[i] = t.shape.size() == 2 ? std * rng.next_normal() : 0.0f;
}

LossParts BigramModel::forward_backward(const TrainBatch& batch) { return run(batch, true); }
LossParts BigramModel::evaluate(const TrainBatch& batch) {
  std::vector<int64_t> saved = counts_;
  LossParts l = run(batch, false);
  counts_ = saved;  // validation does not disturb the routing statistics
  return l;
}

LossParts BigramModel::run(const TrainBatch& batch, bool backward) {
  const ParamTensor& embed = params_.tensors()[0];
  const ParamTensor& head = params_.tensors()[1];
  const ParamTensor& bias = params_.tensors()[2];
  const Rng affinity(0xAFF, 0);
  std::fill(counts_.begin(), counts_.end(), 0);
  const int64_t n = batch.batch * batch.seq_len;
  std::vector<double> logits(static_cast<size_t>(vocab_));
  double loss = 0;
  for (int64_t b = 0; b < batch.batch; ++b) {
    const int32_t* row = batch.tokens + b * (batch.seq_len + 1);
    for (int64_t t = 0; t < batch.seq_len; ++t) {
      const int32_t x = row[t], y = row[t + 1];
      int64_t best = 0;
      double best_score = -1e30;
      for (int64_t e = 0; e < n_experts_; ++e) {
        double s = affinity.uniform(uint64_t(x) * uint64_t(n_experts_) + uint64_t(e)) + biases_[0][size_t(e)];
        if (s > best_score) best_score = s, best = e;  // lower index wins ties
      }
      ++counts_[size_t(best)];
      const float* h = embed.data + int64_t(x) * dim_;
      double mx = -1e300;
      for (int64_t v = 0; v < vocab_; ++v) {
        double z = bias.data[v];
        for (int64_t d = 0; d < dim_; ++d) z += double(head.data[v * dim_ + d]) * h[d];
        logits[size_t(v)] = z;
        mx = std::max(mx, z);
      }
      double sum = 0;
      for (double z : logits) sum += std::exp(z - mx);
      loss += mx + std::log(sum) - logits[size_t(y)];
      if (!backward) continue;
      float* dh = embed.grad + int64_t(x) * dim_;
      for (int64_t v = 0; v < vocab_; ++v) {
        const float g = float((std::exp(logits[size_t(v)] - mx) / sum - (v == y ? 1.0 : 0.0)) / double(n));
        bias.grad[v] += g;
        for (int64_t d = 0; d < dim_; ++d) {
          head.grad[v * dim_ + d] += g * h[d];
          dh[d] += g * head.data[v * dim_ + d];
        }
      }
    }
  }
  LossParts parts;
  parts.main = loss / double(n);
  parts.total = parts.main;
  return parts;
}

}  // namespace dsv3::testing
