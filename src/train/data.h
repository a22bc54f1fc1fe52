// Training data: text corpora → binary token shards (prepare), and a memory-mapped,
// deterministic, resumable sampler of fixed-length windows (load).
//
// Prepared directory:
//   meta.json            {"format": "dsv3-tokens", "version": 1, "vocab_size", "eos_id",
//                         "dtype": "uint16"|"uint32", "seed", "val_fraction",
//                         "train"/"val": {"documents", "tokens", "shards": [{"file", "tokens",
//                         "bytes", "crc32"}]}}; written last, so its presence means complete.
//   train-NNNNN.tok, val-NNNNN.tok
// Shard file: 32-byte header | tokens (little-endian uint16 when vocab_size <= 65535, else uint32)
//   header: magic "DSV3TOKS" | u32 version (1) | u32 bytes per token (2 or 4) | u64 token count
//           | u64 reserved (0)
// Each document is followed by the EOS id. Whole documents go to the validation split: in each
// consecutive block of round(1/val_fraction) documents, one at a position drawn from the seed.
// Memory is bounded by one shard buffer (shard_tokens) plus one document, whatever the corpus size.
//
// Windows: a split of N tokens has (N_s − 1) / T windows per shard s; window j of a shard is
// tokens [j·T, j·T + T] (T + 1 tokens: inputs and shifted targets). Each epoch visits every
// window once in the order of a seeded permutation (a 4-round Feistel network with cycle
// walking: O(1) memory, any window computable from (seed, epoch, index)). The sampler state is
// (epoch, position); restoring it continues mid-epoch exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"

namespace dsv3 {

using TokenizeFn = std::function<std::vector<int32_t>(std::string_view)>;

struct PrepareOptions {
  std::string out_dir;
  double val_fraction = 0.01;
  uint64_t seed = 0;
  bool doc_per_file = false;           // plain text: one document per file (else per blank-line block)
  int64_t shard_tokens = int64_t(1) << 25;  // tokens per shard (bounds memory)
  int64_t vocab_size = 0;
  int32_t eos_id = -1;
};

struct SplitStats {
  int64_t documents = 0;
  int64_t tokens = 0;
  int64_t shards = 0;
};

struct PrepareStats {
  SplitStats train, val;
};

// Inputs: *.jsonl files ({"text": ...} per line), other files plain text.
Result<PrepareStats> prepare_dataset(const PrepareOptions& opt, const std::vector<std::string>& inputs,
                                     const TokenizeFn& tokenize);

// One split (train or val): its shards, memory-mapped.
class TokenSplit {
 public:
  int64_t tokens() const { return tokens_; }
  int64_t documents() const { return documents_; }
  // Windows of T + 1 tokens available (over all shards).
  int64_t windows(int64_t seq_len) const;
  // Copies window `w` (T + 1 tokens) into out.
  void read_window(int64_t w, int64_t seq_len, int32_t* out) const;

 private:
  friend class TokenDataset;
  struct Shard {
    MappedFile file;
    const uint8_t* tokens = nullptr;
    int64_t count = 0;
  };
  std::vector<Shard> shards_;
  int bytes_per_token_ = 2;
  int64_t tokens_ = 0, documents_ = 0;
};

class TokenDataset {
 public:
  // Opens DIR/meta.json and maps every shard, checking headers and sizes, and (verify) CRC-32s.
  static Result<TokenDataset> open(const std::string& dir, bool verify = true);

  int64_t vocab_size() const { return vocab_size_; }
  int32_t eos_id() const { return eos_id_; }
  const TokenSplit& train() const { return *train_; }
  const TokenSplit& val() const { return *val_; }
  // Checks that every token id is below vocab (the model's vocabulary may be larger).
  Status check_vocab(int64_t model_vocab) const;

 private:
  int64_t vocab_size_ = 0;
  int32_t eos_id_ = -1;
  std::unique_ptr<TokenSplit> train_, val_;
};

struct LoaderState {
  uint64_t epoch = 0;
  uint64_t position = 0;  // windows of this epoch already consumed
};

// A seeded bijection of [0, n) (Feistel with cycle walking). Exposed for tests.
uint64_t permute_index(uint64_t i, uint64_t n, uint64_t key);

class BatchSampler {
 public:
  BatchSampler(const TokenSplit& split, int64_t seq_len, uint64_t seed);
  int64_t windows_per_epoch() const { return n_windows_; }
  // Fills out (batch, seq_len + 1) with the next `batch` windows; epochs roll over mid-batch.
  void next_batch(int64_t batch, int32_t* out);
  LoaderState state() const { return state_; }
  void set_state(const LoaderState& s) { state_ = s; }

 private:
  const TokenSplit& split_;
  int64_t seq_len_;
  uint64_t seed_;
  int64_t n_windows_;
  LoaderState state_;
};

// The fixed validation set: batch `index` of `n_batches`, windows spread evenly over the split
// (wrapping when the split has fewer windows than n_batches·batch). Same for every call.
void validation_batch(const TokenSplit& val, int64_t seq_len, int64_t batch, int64_t index,
                      int64_t n_batches, int32_t* out);

// CRC-32 (zlib polynomial) of a byte range, continuing from `crc`.
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

}  // namespace dsv3
