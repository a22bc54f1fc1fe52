#include "tokenizer/bpe.h"

#include <bit>
#include <queue>

namespace dsv3 {

MergeTable::MergeTable(const std::vector<BpeMerge>& merges) {
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, merges.size() * 2));
  slots_.assign(capacity, Slot{kEmpty, 0, 0});
  mask_ = capacity - 1;
  for (size_t r = 0; r < merges.size(); ++r) {
    const uint64_t key = pack(merges[r].left, merges[r].right);
    size_t i = hash(key) & mask_;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
    // A pair listed twice keeps its first (best) rank, as HF's merge map does on load.
    if (slots_[i].key == kEmpty) slots_[i] = Slot{key, int32_t(r), merges[r].merged};
  }
}

BpeModel::BpeModel(const std::array<int32_t, 256>& byte_ids, const std::vector<BpeMerge>& merges)
    : byte_ids_(byte_ids), table_(merges) {}

void BpeModel::encode_piece(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.size() == 1) {
    if (byte_ids_[uint8_t(bytes[0])] >= 0) out.push_back(byte_ids_[uint8_t(bytes[0])]);
    return;
  }
  const bool cacheable = bytes.size() <= kMaxCachedPieceBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(std::string(bytes));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_heap(bytes, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(bytes), std::vector<int32_t>(out.begin() + first, out.end()));
  }
}

void BpeModel::merge_heap(std::string_view bytes, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> sym;
  sym.reserve(bytes.size());
  for (char c : bytes) {
    const int32_t id = byte_ids_[uint8_t(c)];
    if (id < 0) continue;
    const int32_t n = int32_t(sym.size());
    sym.push_back({id, n - 1, n + 1});
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  struct Candidate {
    int32_t rank;
    int32_t pos;  // index of the left symbol
    int32_t left;
    int32_t right;
    int32_t merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push_pair = [&](int32_t pos) {
    if (pos < 0) return;
    const int32_t nx = sym[pos].next;
    if (nx < 0) return;
    int32_t rank = 0, merged = 0;
    if (table_.find(sym[pos].id, sym[nx].id, &rank, &merged)) heap.push({rank, pos, sym[pos].id, sym[nx].id, merged});
  };
  for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) push_pair(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& l = sym[c.pos];
    // Stale entries: a symbol's id only ever grows into a longer token, so equal ids on both
    // sides mean the pair is still the one that was pushed.
    if (l.id != c.left || l.next < 0 || sym[l.next].id != c.right) continue;
    Symbol& r = sym[l.next];
    l.id = c.merged;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.pos;
    r.id = -1;  // dead
    push_pair(l.prev);
    push_pair(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

void BpeModel::merge_naive(std::string_view bytes, std::vector<int32_t>& out) const {
  std::vector<int32_t> ids;
  for (char c : bytes)
    if (byte_ids_[uint8_t(c)] >= 0) ids.push_back(byte_ids_[uint8_t(c)]);
  for (;;) {
    int32_t best_rank = -1, best_pos = -1, best_merged = -1;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      int32_t rank, merged;
      if (table_.find(ids[i], ids[i + 1], &rank, &merged) && (best_rank < 0 || rank < best_rank)) {
        best_rank = rank;
        best_pos = int32_t(i);
        best_merged = merged;
      }
    }
    if (best_pos < 0) break;
    ids[best_pos] = best_merged;
    ids.erase(ids.begin() + best_pos + 1);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace dsv3
