#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace dsv3 {

struct Tokenizer::Impl {
  PreTokenizer pre;
  std::unique_ptr<BpeModel> bpe;
  bool ignore_merges = false;
  std::vector<AddedToken> added;
  AddedTokenMatcher matcher;
  std::vector<std::string> id_to_token;  // "" for ids without a token
  std::vector<std::string> id_bytes;     // what each id decodes to
  std::vector<uint8_t> has_token, special;
  std::unordered_map<std::string, int32_t> token_to_id;
  int32_t bos = -1, eos = -1, pad = -1;
  bool add_bos = false;
  std::string chat_template;
};

namespace {

using nlohmann::json;

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::errorf("cannot open {}", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::errorf("error reading {}", path.string());
  return ss.str();
}

Status check_normalizer(const json& n) {
  if (n.is_null()) return Status::ok();
  const std::string type = n.value("type", "");
  if (type == "Sequence") {
    for (const auto& step : n.at("normalizers")) DSV3_TRY(check_normalizer(step));
    return Status::ok();
  }
  return Status::errorf("normalizer '{}' is not supported (only none or an empty Sequence)", type);
}

Status check_decoder(const json& d) {
  if (d.is_null()) return Status::ok();
  const std::string type = d.value("type", "");
  if (type == "ByteLevel") return Status::ok();
  if (type == "Sequence" && d.at("decoders").size() == 1) return check_decoder(d.at("decoders")[0]);
  return Status::errorf("decoder '{}' is not supported (only ByteLevel)", type);
}

// The string of a special token entry in tokenizer_config.json: a plain string or an
// AddedToken object.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& v = config.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v.at("content").get<std::string>();
  return std::nullopt;
}

// HF's ByteLevel decoder maps a token through the byte alphabet when every character is in it,
// and otherwise keeps the token's own UTF-8 bytes (added tokens such as "<｜User｜>").
std::string token_to_bytes(const std::string& token) {
  auto bytes = byte_level_to_bytes(token);
  return bytes ? *bytes : token;
}

Status set_token(Tokenizer::Impl& t, int32_t id, const std::string& token) {
  if (id < 0 || id >= (1 << 24)) return Status::errorf("token id {} out of range [0, 2^24)", id);
  if (size_t(id) >= t.id_to_token.size()) {
    t.id_to_token.resize(id + 1);
    t.has_token.resize(id + 1, 0);
    t.special.resize(id + 1, 0);
  }
  t.id_to_token[id] = token;
  t.has_token[id] = 1;
  t.token_to_id[token] = id;
  return Status::ok();
}

Status load_model(Tokenizer::Impl& t, const json& model) {
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") return Status::errorf("model type '{}' is not supported (only BPE)", type);
  if (model.contains("dropout") && !model.at("dropout").is_null() && model.at("dropout").get<double>() != 0.0)
    return Status::error("BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model.at(key).is_null() && !model.at(key).get<std::string>().empty())
      return Status::errorf("BPE {} is not supported", key);
  t.ignore_merges = model.value("ignore_merges", false);

  for (const auto& [token, id] : model.at("vocab").items()) DSV3_TRY(set_token(t, id.get<int32_t>(), token));

  std::array<int32_t, 256> byte_ids;
  const auto& pieces = byte_level_pieces();
  for (int b = 0; b < 256; ++b) {
    auto it = t.token_to_id.find(pieces[b]);
    byte_ids[b] = it == t.token_to_id.end() ? -1 : it->second;
  }

  std::vector<BpeMerge> merges;
  const json& jm = model.at("merges");
  merges.reserve(jm.size());
  for (size_t r = 0; r < jm.size(); ++r) {
    std::string a, b;
    if (jm[r].is_string()) {
      const std::string s = jm[r].get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        return Status::errorf("merge {} '{}' is not of the form 'a b'", r, s);
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      if (!jm[r].is_array() || jm[r].size() != 2) return Status::errorf("merge {} is not a pair", r);
      a = jm[r][0].get<std::string>();
      b = jm[r][1].get<std::string>();
    }
    auto ia = t.token_to_id.find(a), ib = t.token_to_id.find(b), im = t.token_to_id.find(a + b);
    if (ia == t.token_to_id.end() || ib == t.token_to_id.end() || im == t.token_to_id.end())
      return Status::errorf("merge {} '{} {}' uses a token missing from the vocab", r, a, b);
    merges.push_back({ia->second, ib->second, im->second});
  }
  t.bpe = std::make_unique<BpeModel>(byte_ids, merges);
  return Status::ok();
}

Status load_added_tokens(Tokenizer::Impl& t, const json& list) {
  for (const auto& a : list) {
    AddedToken tok;
    tok.id = a.at("id").get<int32_t>();
    tok.content = a.at("content").get<std::string>();
    if (!utf8_is_valid(tok.content) || tok.content.empty())
      return Status::errorf("added token {} is empty or not valid UTF-8", tok.id);
    tok.special = a.value("special", false);
    tok.single_word = a.value("single_word", false);
    tok.lstrip = a.value("lstrip", false);
    tok.rstrip = a.value("rstrip", false);
    tok.normalized = a.value("normalized", !tok.special);
    DSV3_TRY(set_token(t, tok.id, tok.content));
    t.added.push_back(std::move(tok));
  }
  for (const auto& tok : t.added) t.special[tok.id] = tok.special;
  t.matcher = AddedTokenMatcher(t.added);
  return Status::ok();
}

Status load_config(Tokenizer::Impl& t, const json& config) {
  auto lookup = [&](const char* key) -> Result<int32_t> {
    auto s = config_token(config, key);
    if (!s) return -1;
    auto it = t.token_to_id.find(*s);
    if (it == t.token_to_id.end()) return Status::errorf("tokenizer_config {} '{}' is not in the vocab", key, *s);
    return it->second;
  };
  auto bos = lookup("bos_token"), eos = lookup("eos_token"), pad = lookup("pad_token");
  DSV3_TRY(bos);
  DSV3_TRY(eos);
  DSV3_TRY(pad);
  t.bos = *bos;
  t.eos = *eos;
  t.pad = *pad;
  t.add_bos = config.value("add_bos_token", false);
  if (config.contains("chat_template")) {
    const json& ct = config.at("chat_template");
    if (ct.is_string()) {
      t.chat_template = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const auto& entry : ct)
        if (entry.value("name", "") == "default") t.chat_template = entry.value("template", "");
    }
  }
  return Status::ok();
}

}  // namespace

Result<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json) {
  auto impl = std::make_shared<Impl>();
  try {
    const json tj = json::parse(tokenizer_json);
    DSV3_TRY(check_normalizer(tj.value("normalizer", json())));
    DSV3_TRY(check_decoder(tj.value("decoder", json())));
    auto pre = PreTokenizer::from_json(tj.value("pre_tokenizer", json()));
    DSV3_TRY(pre);
    impl->pre = std::move(*pre);
    DSV3_TRY(load_model(*impl, tj.at("model")));
    DSV3_TRY(load_added_tokens(*impl, tj.value("added_tokens", json::array())));
    if (!config_json.empty()) DSV3_TRY(load_config(*impl, json::parse(config_json)));
  } catch (const json::exception& e) {
    return Status::errorf("malformed tokenizer file: {}", e.what());
  }
  impl->id_bytes.resize(impl->id_to_token.size());
  for (size_t id = 0; id < impl->id_to_token.size(); ++id)
    if (impl->has_token[id]) impl->id_bytes[id] = token_to_bytes(impl->id_to_token[id]);
  return Tokenizer(std::move(impl));
}

Result<Tokenizer> Tokenizer::load(const std::string& path_or_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path file = path_or_dir;
  if (fs::is_directory(file, ec)) file /= "tokenizer.json";
  auto text = read_file(file);
  DSV3_TRY(text);
  std::string config;
  const fs::path config_path = file.parent_path() / "tokenizer_config.json";
  if (fs::exists(config_path, ec)) {
    auto c = read_file(config_path);
    DSV3_TRY(c);
    config = std::move(*c);
  }
  auto tok = from_json(*text, config);
  if (!tok) return tok.status().with_context(file.string());
  return tok;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  const Impl& t = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_bos && t.bos >= 0) ids.push_back(t.bos);
  std::string repaired;
  if (!utf8_is_valid(text)) {
    repaired = utf8_repair(text);
    text = repaired;
  }
  std::vector<Span> pieces;
  for (const Segment& seg : t.matcher.split(text)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    pieces.clear();
    t.pre.split(text, seg.span, pieces);
    for (const Span& p : pieces) {
      const std::string_view bytes = text.substr(p.begin, p.end - p.begin);
      if (t.ignore_merges) {
        auto it = t.token_to_id.find(bytes_to_byte_level(bytes));
        if (it != t.token_to_id.end()) {
          ids.push_back(it->second);
          continue;
        }
      }
      t.bpe->encode_piece(bytes, ids);
    }
  }
  return ids;
}

std::string Tokenizer::decode_bytes(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= t.id_bytes.size() || !t.has_token[id]) continue;
    if (skip_special && t.special[id]) continue;
    out += t.id_bytes[id];
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes = decode_bytes(ids, skip_special);
  return utf8_is_valid(bytes) ? bytes : utf8_repair(bytes);
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  const Impl& t = *impl_;
  if (id < 0 || size_t(id) >= t.id_bytes.size()) return {};
  return t.id_bytes[id];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->token_to_id.find(std::string(token));
  if (it == impl_->token_to_id.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  const Impl& t = *impl_;
  if (id < 0 || size_t(id) >= t.id_to_token.size() || !t.has_token[id]) return std::nullopt;
  return t.id_to_token[id];
}

bool Tokenizer::is_special(int32_t id) const {
  const Impl& t = *impl_;
  return id >= 0 && size_t(id) < t.special.size() && t.special[id];
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::pad_id() const { return impl_->pad; }
bool Tokenizer::add_bos_token() const { return impl_->add_bos; }
size_t Tokenizer::vocab_size() const { return impl_->id_to_token.size(); }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  std::string repaired = utf8_repair(text);
  std::vector<Span> pieces;
  impl_->pre.split(repaired, {0, uint32_t(repaired.size())}, pieces);
  std::vector<std::string> out;
  for (const Span& p : pieces) out.emplace_back(repaired.substr(p.begin, p.end - p.begin));
  return out;
}

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  pending_ += tokenizer_.token_bytes(id);
  const size_t n = utf8_emittable_prefix(pending_);
  if (n == 0) return {};
  std::string out = utf8_repair(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_repair(pending_);
  pending_.clear();
  return out;
}

}  // namespace dsv3
