// Learns a byte-level BPE vocabulary (Hugging Face BpeTrainer semantics) and writes it as a
// tokenizer.json + tokenizer_config.json that Tokenizer (and Hugging Face) load.
//
// Pipeline: each line of the corpus (with its line ending, as HF's train_from_files feeds it)
// is split around the special tokens, pre-tokenized with the DeepSeek-V3 regexes, and each
// distinct pre-token is counted once. Ids: the special tokens first (BOS=0, EOS=1, pad=2, then
// the chat markers), then the 256 byte symbols in code-point order of their alphabet character
// (as HF sorts its initial alphabet), then one id per merge. Each step merges the adjacent pair
// with the highest count over all pre-tokens (weighted by frequency); ties go to the smallest
// (left id, right id). Pair counts are updated incrementally: only the pre-tokens that contain
// the merged pair are rescanned.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "tokenizer/pretokenizer.h"

namespace dsv3 {

struct BpeTrainerOptions {
  size_t vocab_size = 8192;  // total, including special tokens and the 256 byte symbols
  uint64_t min_frequency = 1;  // pairs seen fewer times are never merged
  // Special tokens, id = position. BOS/EOS/pad come first so bos=0 / eos=1 as in DeepSeek-V3.
  std::vector<std::string> special_tokens = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>",
                                             "<｜User｜>", "<｜Assistant｜>"};
};

struct TrainedBpe {
  std::vector<std::string> vocab;  // id -> token (byte-level alphabet form; specials verbatim)
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  std::vector<std::string> special_tokens;
  std::vector<std::string> split_patterns;

  // tokenizer.json text (same layout as DeepSeek-V3's file).
  std::string tokenizer_json() const;
  // tokenizer_config.json text: bos = special[0], eos = special[1], pad = special[2], the
  // DeepSeek-V3 chat template, add_bos_token true.
  std::string tokenizer_config_json() const;
  // Writes both files into dir (created if missing).
  Status save(const std::string& dir) const;
};

class BpeTrainer {
 public:
  static Result<BpeTrainer> create(BpeTrainerOptions options);

  // Counts the pre-tokens of text, line by line. Invalid UTF-8 is repaired first.
  void add_text(std::string_view text);
  Status add_file(const std::string& path);

  Result<TrainedBpe> train() const;

  size_t distinct_pre_tokens() const { return counts_.size(); }

 private:
  BpeTrainerOptions options_;
  PreTokenizer pre_;
  std::vector<std::string> patterns_;
  std::unordered_map<std::string, uint64_t> counts_;
};

}  // namespace dsv3
