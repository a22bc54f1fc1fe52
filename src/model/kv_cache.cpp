#include "model/kv_cache.h"

#include <algorithm>

#include "core/check.h"

namespace dsv3 {

KvPool::KvPool(int64_t n_layers, int64_t row_dim, int64_t page_size, int64_t max_pages)
    : n_layers_(n_layers), row_dim_(row_dim), page_size_(page_size), max_pages_(max_pages) {
  DSV3_CHECK(n_layers > 0 && row_dim > 0 && page_size > 0 && max_pages > 0,
             "bad KV pool shape: layers {} row {} page {} pages {}", n_layers, row_dim, page_size, max_pages);
  data_.reset(new float[size_t(max_pages * page_floats())]);
  free_.reserve(size_t(max_pages));
  for (int64_t i = max_pages - 1; i >= 0; --i) free_.push_back(int32_t(i));
}

std::unique_ptr<KvPool> KvPool::with_bytes(int64_t n_layers, int64_t row_dim, int64_t page_size, int64_t bytes) {
  int64_t page_bytes = n_layers * page_size * row_dim * int64_t(sizeof(float));
  return std::make_unique<KvPool>(n_layers, row_dim, page_size, std::max<int64_t>(1, bytes / page_bytes));
}

int32_t KvPool::alloc_page() {
  if (free_.empty()) return -1;
  int32_t id = free_.back();
  free_.pop_back();
  return id;
}

void KvPool::free_page(int32_t id) { free_.push_back(id); }

Status SequenceCache::reserve(int64_t n_tokens) {
  while (capacity() < n_tokens) {
    int32_t id = pool_->alloc_page();
    if (id < 0) {
      return Status::errorf("KV cache pool exhausted: {} tokens need {} pages, {} of {} in use", n_tokens,
                            (n_tokens + pool_->page_size() - 1) / pool_->page_size(), pool_->pages_in_use(),
                            pool_->max_pages());
    }
    pages_.push_back(id);
    page_ptrs_.push_back(pool_->page(id));
  }
  return Status::ok();
}

void SequenceCache::release() {
  for (int32_t id : pages_) pool_->free_page(id);
  pages_.clear();
  page_ptrs_.clear();
  length_ = 0;
}

}  // namespace dsv3
