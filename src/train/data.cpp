#include "train/data.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>

#include "core/check.h"
#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/json.h"

namespace dsv3 {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'D', 'S', 'V', '3', 'T', 'O', 'K', 'S'};
constexpr uint32_t kShardVersion = 1;
constexpr size_t kHeaderBytes = 32;
constexpr uint64_t kValStream = 0x76616c;  // "val": the RNG stream that picks validation documents
constexpr uint64_t kPermStream = 0x7065726d;  // "perm": the per-epoch window permutation

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Calls on_doc(text) for every document of one input file, reading line by line.
Status for_each_document(const std::string& path, bool doc_per_file,
                         const std::function<Status(std::string_view)>& on_doc) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("{}: cannot open: {}", path, std::strerror(errno));
  std::string line, doc;
  if (ends_with(path, ".jsonl")) {
    for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
      if (is_blank(line)) continue;
      std::string src = fmt::format("{}:{}", path, lineno);
      Result<Json> j = parse_json(line, src);
      DSV3_TRY(j);
      if (!j->is_object()) return Status::errorf("{}: expected a JSON object with a \"text\" field", src);
      Result<std::string> text = JsonObject(*j, src).get_string("text");
      DSV3_TRY(text);
      DSV3_TRY(on_doc(*text));
    }
  } else if (doc_per_file) {
    doc.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!is_blank(doc)) DSV3_TRY(on_doc(doc));
  } else {
    while (std::getline(in, line)) {
      if (is_blank(line)) {
        if (!doc.empty()) DSV3_TRY(on_doc(doc));
        doc.clear();
        continue;
      }
      if (!doc.empty()) doc += '\n';
      doc += line;
    }
    if (!doc.empty()) DSV3_TRY(on_doc(doc));
  }
  if (in.bad()) return Status::errorf("{}: read failed", path);
  return Status::ok();
}

// Accumulates one split's tokens and writes shards of at most shard_tokens tokens.
class ShardWriter {
 public:
  ShardWriter(std::string dir, std::string prefix, int bytes_per_token, int64_t shard_tokens)
      : dir_(std::move(dir)), prefix_(std::move(prefix)), bpt_(bytes_per_token), cap_(shard_tokens) {}

  Status add(std::span<const int32_t> tokens) {
    for (int32_t t : tokens) {
      buf_.push_back(uint32_t(t));
      if (int64_t(buf_.size()) == cap_) DSV3_TRY(flush());
    }
    return Status::ok();
  }

  Status flush() {
    if (buf_.empty()) return Status::ok();
    std::string name = fmt::format("{}-{:05d}.tok", prefix_, shards_.size());
    uint8_t h[kHeaderBytes];
    std::memcpy(h, kMagic, 8);
    uint32_t version = kShardVersion, bpt = uint32_t(bpt_);
    uint64_t count = buf_.size(), reserved = 0;
    std::memcpy(h + 8, &version, 4);
    std::memcpy(h + 12, &bpt, 4);
    std::memcpy(h + 16, &count, 8);
    std::memcpy(h + 24, &reserved, 8);
    AtomicFileWriter w;
    DSV3_TRY(w.open((fs::path(dir_) / name).string()));
    DSV3_TRY(w.write(h, kHeaderBytes));
    uint32_t crc = crc32_update(0, h, kHeaderBytes);
    // Narrow and write in 64K-token pieces: no second copy of the shard in memory.
    std::vector<uint8_t> piece;
    for (size_t begin = 0; begin < buf_.size(); begin += size_t(1) << 16) {
      const size_t end = std::min(buf_.size(), begin + (size_t(1) << 16));
      piece.resize((end - begin) * size_t(bpt_));
      for (size_t i = begin; i < end; ++i) {
        if (bpt_ == 2) {
          uint16_t v = uint16_t(buf_[i]);
          std::memcpy(&piece[(i - begin) * 2], &v, 2);
        } else {
          std::memcpy(&piece[(i - begin) * 4], &buf_[i], 4);
        }
      }
      DSV3_TRY(w.write(piece.data(), piece.size()));
      crc = crc32_update(crc, piece.data(), piece.size());
    }
    DSV3_TRY(w.commit());
    Json s;
    s["file"] = name;
    s["tokens"] = count;
    s["bytes"] = kHeaderBytes + count * uint64_t(bpt_);
    s["crc32"] = crc;
    shards_.push_back(std::move(s));
    tokens_ += int64_t(count);
    buf_.clear();
    return Status::ok();
  }

  Json summary(int64_t documents) const {
    Json j;
    j["documents"] = documents;
    j["tokens"] = tokens_;
    j["shards"] = shards_.empty() ? Json::array() : Json(shards_);
    return j;
  }
  int64_t shards() const { return int64_t(shards_.size()); }
  int64_t tokens() const { return tokens_; }

 private:
  std::string dir_, prefix_;
  int bpt_;
  int64_t cap_;
  std::vector<uint32_t> buf_;
  std::vector<Json> shards_;
  int64_t tokens_ = 0;
};

}  // namespace

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  uLong c = crc;
  while (n > 0) {  // zlib takes uInt lengths
    uInt chunk = uInt(std::min<size_t>(n, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return uint32_t(c);
}

Result<PrepareStats> prepare_dataset(const PrepareOptions& opt, const std::vector<std::string>& inputs,
                                     const TokenizeFn& tokenize) {
  if (opt.vocab_size <= 0) return Status::error("vocabulary size must be positive");
  if (opt.eos_id < 0 || opt.eos_id >= opt.vocab_size)
    return Status::errorf("EOS id {} is not in the vocabulary (size {})", opt.eos_id, opt.vocab_size);
  if (!(opt.val_fraction >= 0 && opt.val_fraction < 1))
    return Status::errorf("validation fraction must be in [0, 1), got {}", opt.val_fraction);
  if (opt.shard_tokens < 1) return Status::error("shard size must be at least one token");
  if (inputs.empty()) return Status::error("no input files");
  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) return Status::errorf("{}: cannot create directory: {}", opt.out_dir, ec.message());
  if (fs::exists(fs::path(opt.out_dir) / "meta.json"))
    return Status::errorf("{}: already holds a prepared dataset (meta.json); use an empty directory", opt.out_dir);

  const int bpt = opt.vocab_size <= 65535 ? 2 : 4;
  ShardWriter train(opt.out_dir, "train", bpt, opt.shard_tokens), val(opt.out_dir, "val", bpt, opt.shard_tokens);
  PrepareStats stats;
  const Rng val_rng(opt.seed, kValStream);
  const uint64_t block = opt.val_fraction > 0 ? uint64_t(std::max(1.0, std::round(1.0 / opt.val_fraction))) : 0;
  uint64_t doc_index = 0;
  std::vector<int32_t> ids;
  auto on_doc = [&](std::string_view text) -> Status {
    ids = tokenize(text);
    for (int32_t id : ids)
      if (id < 0 || id >= opt.vocab_size)
        return Status::errorf("tokenizer produced id {} outside the vocabulary (size {})", id, opt.vocab_size);
    ids.push_back(opt.eos_id);
    bool is_val = block > 0 && doc_index % block == val_rng.bits(doc_index / block) % block;
    ++doc_index;
    ++(is_val ? stats.val : stats.train).documents;
    return (is_val ? val : train).add(ids);
  };
  for (const std::string& path : inputs) DSV3_TRY(for_each_document(path, opt.doc_per_file, on_doc));
  DSV3_TRY(train.flush());
  DSV3_TRY(val.flush());
  stats.train.tokens = train.tokens();
  stats.train.shards = train.shards();
  stats.val.tokens = val.tokens();
  stats.val.shards = val.shards();

  Json meta;
  meta["format"] = "dsv3-tokens";
  meta["version"] = 1;
  meta["vocab_size"] = opt.vocab_size;
  meta["eos_id"] = opt.eos_id;
  meta["dtype"] = bpt == 2 ? "uint16" : "uint32";
  meta["seed"] = opt.seed;
  meta["val_fraction"] = opt.val_fraction;
  meta["train"] = train.summary(stats.train.documents);
  meta["val"] = val.summary(stats.val.documents);
  DSV3_TRY(write_file_atomic((fs::path(opt.out_dir) / "meta.json").string(), meta.dump(2) + "\n"));
  return stats;
}

Result<TokenDataset> TokenDataset::open(const std::string& dir, bool verify) {
  const std::string meta_path = (fs::path(dir) / "meta.json").string();
  Result<std::string> text = read_text_file(meta_path);
  if (!text.is_ok())
    return Status::errorf("{}: not a prepared dataset ({}); run `dsv3 data prepare` first", dir, text.message());
  Result<Json> json = parse_json(*text, meta_path);
  DSV3_TRY(json);
  JsonObject meta(*json, meta_path);
  Result<std::string> format = meta.get_string("format");
  DSV3_TRY(format);
  if (*format != "dsv3-tokens") return meta.field_error("format", "\"dsv3-tokens\"");
  Result<int64_t> version = meta.get_int("version");
  DSV3_TRY(version);
  if (*version != 1) return meta.field_error("version", "1");
  Result<int64_t> vocab = meta.get_int("vocab_size");
  DSV3_TRY(vocab);
  Result<int64_t> eos = meta.get_int("eos_id");
  DSV3_TRY(eos);
  Result<std::string> dtype = meta.get_string("dtype");
  DSV3_TRY(dtype);
  if (*dtype != "uint16" && *dtype != "uint32") return meta.field_error("dtype", "\"uint16\" or \"uint32\"");
  const int bpt = *dtype == "uint16" ? 2 : 4;

  TokenDataset ds;
  ds.vocab_size_ = *vocab;
  ds.eos_id_ = int32_t(*eos);
  for (const char* key : {"train", "val"}) {
    auto split = std::make_unique<TokenSplit>();
    split->bytes_per_token_ = bpt;
    Result<std::optional<JsonObject>> obj = meta.get_object(key);
    DSV3_TRY(obj);
    if (!obj->has_value()) return meta.missing(key);
    const JsonObject& s = **obj;
    Result<int64_t> docs = s.get_int("documents");
    DSV3_TRY(docs);
    split->documents_ = *docs;
    const Json* shards = s.find("shards");
    if (shards == nullptr || !shards->is_array()) return s.field_error("shards", "an array");
    for (size_t i = 0; i < shards->size(); ++i) {
      JsonObject sh((*shards)[i], meta_path, s.path_of("shards") + fmt::format("[{}]", i));
      Result<std::string> file = sh.get_string("file");
      DSV3_TRY(file);
      Result<int64_t> count = sh.get_int("tokens");
      DSV3_TRY(count);
      Result<int64_t> bytes = sh.get_int("bytes");
      DSV3_TRY(bytes);
      Result<int64_t> crc = sh.get_int("crc32");
      DSV3_TRY(crc);
      if (file->find('/') != std::string::npos || file->find("..") != std::string::npos)
        return sh.field_error("file", "a file name inside the dataset directory");
      const std::string path = (fs::path(dir) / *file).string();
      Result<MappedFile> mf = MappedFile::open(path);
      DSV3_TRY(mf);
      const uint8_t* p = mf->data();
      if (int64_t(mf->size()) != *bytes || mf->size() < kHeaderBytes)
        return Status::errorf("{}: size {} bytes, meta.json says {} (truncated or replaced shard)", path,
                              mf->size(), *bytes);
      uint32_t hv, hb;
      uint64_t hc;
      std::memcpy(&hv, p + 8, 4);
      std::memcpy(&hb, p + 12, 4);
      std::memcpy(&hc, p + 16, 8);
      if (std::memcmp(p, kMagic, 8) != 0 || hv != kShardVersion || hb != uint32_t(bpt) ||
          int64_t(hc) != *count || kHeaderBytes + hc * hb != mf->size())
        return Status::errorf("{}: bad shard header (magic, version, token width or count)", path);
      if (verify && crc32_update(0, p, mf->size()) != uint32_t(*crc))
        return Status::errorf("{}: CRC-32 mismatch (corrupt shard)", path);
      TokenSplit::Shard shard;
      shard.count = *count;
      shard.file = std::move(mf.value());
      shard.tokens = shard.file.data() + kHeaderBytes;
      split->tokens_ += shard.count;
      split->shards_.push_back(std::move(shard));
    }
    (std::string(key) == "train" ? ds.train_ : ds.val_) = std::move(split);
  }
  return ds;
}

Status TokenDataset::check_vocab(int64_t model_vocab) const {
  if (vocab_size_ > model_vocab)
    return Status::errorf("the dataset's vocabulary ({} ids) is larger than the model's ({}); "
                          "tokens would index past the embedding",
                          vocab_size_, model_vocab);
  return Status::ok();
}

int64_t TokenSplit::windows(int64_t seq_len) const {
  int64_t n = 0;
  for (const Shard& s : shards_) n += s.count > seq_len ? (s.count - 1) / seq_len : 0;
  return n;
}

void TokenSplit::read_window(int64_t w, int64_t seq_len, int32_t* out) const {
  for (const Shard& s : shards_) {
    int64_t n = s.count > seq_len ? (s.count - 1) / seq_len : 0;
    if (w >= n) {
      w -= n;
      continue;
    }
    const uint8_t* p = s.tokens + size_t(w * seq_len) * size_t(bytes_per_token_);
    for (int64_t i = 0; i <= seq_len; ++i) {
      if (bytes_per_token_ == 2) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        out[i] = int32_t(v);
      } else {
        std::memcpy(&out[i], p + 4 * i, 4);
      }
    }
    return;
  }
  DSV3_FAIL("window {} past the end of the split", w);
}

uint64_t permute_index(uint64_t i, uint64_t n, uint64_t key) {
  DSV3_CHECK(i < n, "index {} outside [0, {})", i, n);
  int bits = 2;
  while ((uint64_t(1) << bits) < n) bits += 2;  // even, so the two halves are equal
  const int half = bits / 2;
  const uint64_t mask = (uint64_t(1) << half) - 1;
  do {  // cycle walking: re-encrypt until the value lands inside [0, n)
    uint64_t l = i >> half, r = i & mask;
    for (uint64_t round = 0; round < 4; ++round) {
      uint64_t f = splitmix64(key ^ (round * 0x9E3779B97F4A7C15ull) ^ (r * 0xD6E8FEB86659FD93ull)) & mask;
      uint64_t nl = r;
      r = l ^ f;
      l = nl;
    }
    i = (l << half) | r;
  } while (i >= n);
  return i;
}

BatchSampler::BatchSampler(const TokenSplit& split, int64_t seq_len, uint64_t seed)
    : split_(split), seq_len_(seq_len), seed_(seed), n_windows_(split.windows(seq_len)) {}

void BatchSampler::next_batch(int64_t batch, int32_t* out) {
  DSV3_CHECK(n_windows_ > 0, "no windows of {} tokens in the split", seq_len_ + 1);
  for (int64_t b = 0; b < batch; ++b) {
    if (state_.position >= uint64_t(n_windows_)) {
      ++state_.epoch;
      state_.position = 0;
    }
    uint64_t key = Rng(seed_, kPermStream).bits(state_.epoch);
    uint64_t w = permute_index(state_.position++, uint64_t(n_windows_), key);
    split_.read_window(int64_t(w), seq_len_, out + b * (seq_len_ + 1));
  }
}

void validation_batch(const TokenSplit& val, int64_t seq_len, int64_t batch, int64_t index, int64_t n_batches,
                      int32_t* out) {
  const int64_t n = val.windows(seq_len);
  DSV3_CHECK(n > 0, "no validation windows of {} tokens", seq_len + 1);
  const int64_t total = batch * n_batches;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t k = index * batch + b;
    // Spread evenly when there are more windows than needed; wrap when there are fewer.
    int64_t w = total <= n ? k * n / total : k % n;
    val.read_window(w, seq_len, out + b * (seq_len + 1));
  }
}

}  // namespace dsv3
