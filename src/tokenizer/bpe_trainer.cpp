#include "tokenizer/bpe_trainer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <queue>
#include <sstream>

#include "tokenizer/added_tokens.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/utf8.h"

namespace dsv3 {

namespace {

uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t left_of(uint64_t p) { return int32_t(p >> 32); }
int32_t right_of(uint64_t p) { return int32_t(p & 0xFFFFFFFFu); }

// Specials past the first three (BOS, EOS, pad) are chat markers: like DeepSeek-V3's, they are
// not "special", so decoding with skip_special keeps them.
constexpr size_t kTrueSpecials = 3;

AddedTokenMatcher special_matcher(const std::vector<std::string>& specials) {
  std::vector<AddedToken> tokens;
  for (size_t i = 0; i < specials.size(); ++i) tokens.push_back({int32_t(i), specials[i], i < kTrueSpecials, false, false, false, false});
  return AddedTokenMatcher(tokens);
}

}  // namespace

Result<BpeTrainer> BpeTrainer::create(BpeTrainerOptions options) {
  const size_t floor = options.special_tokens.size() + 256;
  if (options.vocab_size < floor)
    return Status::errorf("vocab size {} is below the {} special + byte tokens", options.vocab_size, floor);
  if (options.special_tokens.size() < kTrueSpecials)
    return Status::error("need at least BOS, EOS and pad special tokens");
  for (const auto& s : options.special_tokens)
    if (s.empty() || !utf8_is_valid(s)) return Status::error("special tokens must be non-empty valid UTF-8");
  BpeTrainer t;
  t.patterns_ = deepseek_v3_split_patterns();
  auto pre = PreTokenizer::from_patterns(t.patterns_);
  DSV3_TRY(pre);
  t.pre_ = std::move(*pre);
  t.options_ = std::move(options);
  return t;
}

void BpeTrainer::add_text(std::string_view raw) {
  const std::string text = utf8_repair(raw);
  const AddedTokenMatcher specials = special_matcher(options_.special_tokens);
  std::vector<Span> pieces;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    end = end == std::string::npos ? text.size() : end + 1;
    const std::string_view line(text.data() + start, end - start);
    for (const Segment& seg : specials.split(line)) {
      if (seg.id >= 0) continue;
      pieces.clear();
      pre_.split(line, seg.span, pieces);
      for (const Span& p : pieces) ++counts_[std::string(line.substr(p.begin, p.end - p.begin))];
    }
    start = end;
  }
}

Status BpeTrainer::add_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("cannot open {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::errorf("error reading {}", path);
  add_text(ss.str());
  return Status::ok();
}

Result<TrainedBpe> BpeTrainer::train() const {
  TrainedBpe out;
  out.special_tokens = options_.special_tokens;
  out.split_patterns = patterns_;
  out.vocab = options_.special_tokens;

  // The byte alphabet in code-point order of its characters.
  std::array<int32_t, 256> byte_id{};
  std::vector<int> order(256);
  for (int b = 0; b < 256; ++b) order[b] = b;
  std::sort(order.begin(), order.end(), [](int a, int b) { return byte_to_unicode(uint8_t(a)) < byte_to_unicode(uint8_t(b)); });
  for (int b : order) {
    byte_id[b] = int32_t(out.vocab.size());
    out.vocab.push_back(byte_level_pieces()[b]);
  }

  // Distinct pre-tokens in sorted order (the result does not depend on it; logs and debugging do).
  std::vector<const std::pair<const std::string, uint64_t>*> entries;
  entries.reserve(counts_.size());
  for (const auto& e : counts_) entries.push_back(&e);
  std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::vector<std::vector<int32_t>> words(entries.size());
  std::vector<int64_t> freq(entries.size());
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words;
  for (size_t w = 0; w < entries.size(); ++w) {
    freq[w] = int64_t(entries[w]->second);
    for (char c : entries[w]->first) words[w].push_back(byte_id[uint8_t(c)]);
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t p = pack(words[w][i], words[w][i + 1]);
      pair_count[p] += freq[w];
      auto& where = pair_words[p];
      if (where.empty() || where.back() != w) where.push_back(uint32_t(w));
    }
  }

  struct Entry {
    int64_t count;
    uint64_t pair;
    // Max-heap on count; among equal counts the smallest pair comes first.
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
  };
  std::priority_queue<Entry> heap;
  for (const auto& [p, c] : pair_count) heap.push({c, p});

  std::unordered_map<std::string, int32_t> token_ids;
  for (size_t id = 0; id < out.vocab.size(); ++id) token_ids.emplace(out.vocab[id], int32_t(id));
  std::vector<uint64_t> touched;
  while (out.vocab.size() < options_.vocab_size && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const int64_t current = pair_count[top.pair];
    if (current != top.count) {  // stale: counts only fall for pairs without the newest token
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < int64_t(std::max<uint64_t>(options_.min_frequency, 1))) break;
    const int32_t a = left_of(top.pair), b = right_of(top.pair);
    // Different merges can spell the same string ("ab c", "a bc"): like HF, the string keeps its
    // first id and the merge is still recorded.
    std::string joined = out.vocab[a] + out.vocab[b];
    auto [it, inserted] = token_ids.emplace(joined, int32_t(out.vocab.size()));
    const int32_t merged = it->second;
    out.merges.emplace_back(out.vocab[a], out.vocab[b]);
    if (inserted) out.vocab.push_back(std::move(joined));

    std::vector<uint32_t> where = std::move(pair_words[top.pair]);
    pair_words.erase(top.pair);
    touched.clear();
    for (uint32_t w : where) {
      std::vector<int32_t>& sym = words[w];
      const int64_t f = freq[w];
      bool has = false;
      for (size_t i = 0; i + 1 < sym.size() && !has; ++i) has = sym[i] == a && sym[i + 1] == b;
      if (!has) continue;  // listed before an earlier merge consumed the pair here
      for (size_t i = 0; i + 1 < sym.size(); ++i) pair_count[pack(sym[i], sym[i + 1])] -= f;
      // Left-to-right, non-overlapping replacement (HF's Word::merge).
      size_t o = 0;
      for (size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          sym[o++] = merged;
          i += 2;
        } else {
          sym[o++] = sym[i++];
        }
      }
      sym.resize(o);
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        const uint64_t p = pack(sym[i], sym[i + 1]);
        pair_count[p] += f;
        if (sym[i] == merged || sym[i + 1] == merged) {
          auto& list = pair_words[p];
          if (list.empty() || list.back() != w) list.push_back(w);
          touched.push_back(p);
        }
      }
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t p : touched) heap.push({pair_count[p], p});
  }
  return out;
}

std::string TrainedBpe::tokenizer_json() const {
  using nlohmann::ordered_json;
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < special_tokens.size(); ++i) {
    const bool special = i < kTrueSpecials;
    added.push_back({{"id", i}, {"content", special_tokens[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", !special}, {"special", special}});
  }
  ordered_json steps = ordered_json::array();
  for (const auto& p : split_patterns)
    steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", p}}}, {"behavior", "Isolated"}, {"invert", false}});
  steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  ordered_json vocab_json = ordered_json::object();
  for (size_t id = 0; id < vocab.size(); ++id) vocab_json[vocab[id]] = id;
  ordered_json merges_json = ordered_json::array();
  for (const auto& [l, r] : merges) merges_json.push_back(l + " " + r);
  ordered_json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", ordered_json::array()}}},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", steps}}},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"vocab", vocab_json},
        {"merges", merges_json}}},
  };
  return j.dump(1) + "\n";
}

std::string TrainedBpe::tokenizer_config_json() const {
  nlohmann::ordered_json j = {
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"bos_token", special_tokens[0]},
      {"eos_token", special_tokens[1]},
      {"pad_token", special_tokens[2]},
      {"clean_up_tokenization_spaces", false},
      {"legacy", true},
      {"model_max_length", 131072},
      {"tokenizer_class", "LlamaTokenizerFast"},
      {"chat_template", deepseek_v3_chat_template_jinja()},
  };
  return j.dump(2) + "\n";
}

Status TrainedBpe::save(const std::string& dir) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::errorf("cannot create {}: {}", dir, ec.message());
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"tokenizer.json", tokenizer_json()},
                                   {"tokenizer_config.json", tokenizer_config_json()}}) {
    const fs::path path = fs::path(dir) / name;
    std::ofstream f(path, std::ios::binary);
    f << text;
    f.close();
    if (!f) return Status::errorf("cannot write {}", path.string());
  }
  return Status::ok();
}

}  // namespace dsv3
