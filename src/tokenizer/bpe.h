// Byte-level BPE with ranked merges, the `model` part of a Hugging Face BPE tokenizer.json.
// Works on raw bytes: a piece starts as one symbol per byte (the id of that byte's alphabet
// character), then the adjacent pair with the lowest merge rank is merged, leftmost first,
// until no pair has a rank — exactly the order of HF's `Word::merge_all` (a min-heap on
// (rank, position)). Pieces seen before are served from a bounded cache.
//
// Thread-safety: encode_piece() is const and may run concurrently (the cache has a mutex).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dsv3 {

struct BpeMerge {
  int32_t left;
  int32_t right;
  int32_t merged;
};

// Open-addressing map (left, right) -> (rank, merged id): the hot lookup of the merge loop.
class MergeTable {
 public:
  explicit MergeTable(const std::vector<BpeMerge>& merges);
  // Returns false when the pair has no merge.
  bool find(int32_t left, int32_t right, int32_t* rank, int32_t* merged) const {
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) {
        *rank = s.rank;
        *merged = s.merged;
        return true;
      }
      if (s.key == kEmpty) return false;
    }
  }

 private:
  struct Slot {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  static uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static size_t hash(uint64_t k) { return size_t((k * 0x9E3779B97F4A7C15ull) >> 17); }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

class BpeModel {
 public:
  // byte_ids[b] = id of the one-byte token for byte b (-1 if the vocab lacks it: that byte is
  // then dropped, as HF does without an unk token). merges in rank order.
  BpeModel(const std::array<int32_t, 256>& byte_ids, const std::vector<BpeMerge>& merges);

  // Appends the ids of one pre-token (raw bytes) to out.
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out) const;

  // The merge loops without the cache: the heap version used for encoding, and a plain
  // quadratic rescan kept as its slow twin for tests.
  void merge_heap(std::string_view bytes, std::vector<int32_t>& out) const;
  void merge_naive(std::string_view bytes, std::vector<int32_t>& out) const;

 private:
  std::array<int32_t, 256> byte_ids_;
  MergeTable table_;
  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedPieceBytes = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace dsv3
