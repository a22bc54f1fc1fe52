// The MLA latent KV cache (spec §2.3 absorbed path): per token and layer it holds only
// [c_kv (kv_lora_rank) ; RoPE(k_pe) (qk_rope_head_dim)], 576 values for DeepSeek-V3 instead of
// n_heads·(d_qk + d_v) for plain multi-head attention.
//
// Memory is a fixed pool of pages (KvPool); each page holds `page_size` consecutive token rows of
// every cached layer. A sequence owns a page table (SequenceCache) drawn from the pool, so
// concurrent sequences share one bounded pool and return their pages when they end.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "kernels/attention.h"

namespace dsv3 {

class KvPool {
 public:
  // n_layers: cached layers (main + MTP); row_dim: kv_lora_rank + qk_rope_head_dim.
  KvPool(int64_t n_layers, int64_t row_dim, int64_t page_size, int64_t max_pages);
  // A pool sized to hold `bytes` of cache (at least one page).
  static std::unique_ptr<KvPool> with_bytes(int64_t n_layers, int64_t row_dim, int64_t page_size, int64_t bytes);

  int64_t n_layers() const { return n_layers_; }
  int64_t row_dim() const { return row_dim_; }
  int64_t page_size() const { return page_size_; }
  int64_t max_pages() const { return max_pages_; }
  int64_t pages_in_use() const { return max_pages_ - int64_t(free_.size()); }
  int64_t page_floats() const { return n_layers_ * page_size_ * row_dim_; }
  int64_t bytes_per_token() const { return n_layers_ * row_dim_ * int64_t(sizeof(float)); }

  // Returns -1 when the pool is exhausted.
  int32_t alloc_page();
  void free_page(int32_t id);
  float* page(int32_t id) { return data_.get() + int64_t(id) * page_floats(); }

 private:
  int64_t n_layers_, row_dim_, page_size_, max_pages_;
  std::unique_ptr<float[]> data_;  // uninitialized: pages are written before they are read
  std::vector<int32_t> free_;
};

// One sequence's view of the pool: a page table and a length (tokens cached so far).
class SequenceCache {
 public:
  explicit SequenceCache(KvPool& pool) : pool_(&pool) {}
  ~SequenceCache() { release(); }
  SequenceCache(const SequenceCache&) = delete;
  SequenceCache& operator=(const SequenceCache&) = delete;

  // Makes room for `n_tokens` tokens in total; fails (and keeps what it had) when the pool is full.
  Status reserve(int64_t n_tokens);
  int64_t capacity() const { return int64_t(pages_.size()) * pool_->page_size(); }
  int64_t length() const { return length_; }
  // Sets the number of valid tokens (grows after a forward; shrinks to roll back drafts).
  void set_length(int64_t n) { length_ = n; }
  void release();  // returns every page to the pool, length 0
  int64_t pages() const { return int64_t(pages_.size()); }

  kernels::LatentCacheView layer(int64_t layer) const {
    return {page_ptrs_.data(), pool_->page_size(), pool_->row_dim(), layer * pool_->page_size() * pool_->row_dim(),
            capacity()};
  }

 private:
  KvPool* pool_;
  std::vector<int32_t> pages_;
  std::vector<float*> page_ptrs_;
  int64_t length_ = 0;
};

}  // namespace dsv3
