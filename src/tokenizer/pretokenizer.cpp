#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "tokenizer/utf8.h"

namespace dsv3 {

namespace detail {

struct CompiledRegex {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~CompiledRegex() { pcre2_code_free(code); }
};

namespace {
constexpr std::string_view kWhiteSpaceSet =
    "\\x{09}-\\x{0D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
}  // namespace

Result<std::string> rewrite_whitespace_classes(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpaceSet) : "[" + std::string(kWhiteSpaceSet) + "]";
      } else if (e == 'S') {
        if (in_class) return Status::errorf("regex '{}': \\S inside a character class is not supported", p);
        out += "[^" + std::string(kWhiteSpaceSet) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t close = p.find(":]", i + 2);
      if (close != std::string_view::npos) {  // POSIX class such as [:alpha:]
        out.append(p.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace detail

namespace {

Result<std::shared_ptr<const detail::CompiledRegex>> compile(const std::string& pattern) {
  auto rewritten = detail::rewrite_whitespace_classes(pattern);
  DSV3_TRY(rewritten);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  auto re = std::make_shared<detail::CompiledRegex>();
  re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten->data()), rewritten->size(),
                           PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
  if (!re->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return Status::errorf("cannot compile regex '{}' at offset {}: {}", pattern, err_offset,
                          reinterpret_cast<const char*>(msg));
  }
  re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
  return std::shared_ptr<const detail::CompiledRegex>(std::move(re));
}

// Python's `re.escape`-like quoting for a String pattern.
std::string quote_literal(std::string_view s) { return "\\Q" + std::string(s) + "\\E"; }

// GPT-2's split, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

Status add_step(const nlohmann::json& step, std::vector<std::string>& patterns, bool& saw_byte_level) {
  const std::string type = step.value("type", "");
  if (saw_byte_level) return Status::errorf("pre_tokenizer step '{}' after ByteLevel is not supported", type);
  if (type == "Split") {
    const auto& pat = step.at("pattern");
    if (step.value("invert", false)) return Status::error("Split with invert=true is not supported");
    const std::string behavior = step.value("behavior", "");
    if (behavior != "Isolated") return Status::errorf("Split behavior '{}' is not supported (only Isolated)", behavior);
    if (pat.contains("Regex")) {
      patterns.push_back(pat.at("Regex").get<std::string>());
    } else if (pat.contains("String")) {
      patterns.push_back(quote_literal(pat.at("String").get<std::string>()));
    } else {
      return Status::error("Split pattern must be Regex or String");
    }
    return Status::ok();
  }
  if (type == "ByteLevel") {
    if (step.value("add_prefix_space", false)) return Status::error("ByteLevel add_prefix_space=true is not supported");
    if (step.value("use_regex", true)) patterns.push_back(kGpt2Pattern);
    saw_byte_level = true;
    return Status::ok();
  }
  return Status::errorf("pre_tokenizer type '{}' is not supported", type);
}

}  // namespace

Result<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& config) {
  std::vector<std::string> patterns;
  bool saw_byte_level = false;
  try {
    if (config.is_null()) return Status::error("pre_tokenizer is null; only byte-level BPE is supported");
    if (config.value("type", "") == "Sequence") {
      for (const auto& step : config.at("pretokenizers")) DSV3_TRY(add_step(step, patterns, saw_byte_level));
    } else {
      DSV3_TRY(add_step(config, patterns, saw_byte_level));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::errorf("malformed pre_tokenizer: {}", e.what());
  }
  if (!saw_byte_level) return Status::error("pre_tokenizer has no ByteLevel step; only byte-level BPE is supported");
  return from_patterns(patterns);
}

Result<PreTokenizer> PreTokenizer::from_patterns(const std::vector<std::string>& patterns) {
  PreTokenizer p;
  for (const auto& pat : patterns) {
    auto re = compile(pat);
    DSV3_TRY(re);
    p.steps_.push_back(std::move(*re));
  }
  p.patterns_ = patterns;
  return p;
}

namespace {

// One Isolated split of text[span]: matches and the gaps between them, in order.
void split_isolated(const detail::CompiledRegex& re, pcre2_match_data* md, std::string_view text, Span span,
                    std::vector<Span>& out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + span.begin);
  const PCRE2_SIZE len = span.end - span.begin;
  PCRE2_SIZE pos = 0, gap_start = 0;
  while (pos < len) {
    const int rc = re.jit ? pcre2_jit_match(re.code, subject, len, pos, 0, md, nullptr)
                          : pcre2_match(re.code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;  // no further match (or a match-limit error: treat the rest as a gap)
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const PCRE2_SIZE mb = ov[0], me = ov[1];
    if (me == mb) {  // empty match: never a piece; step over one character
      const size_t step = utf8_sequence_length(text, span.begin + mb);
      pos = mb + (step ? step : 1);
      continue;
    }
    if (mb > gap_start) out.push_back({uint32_t(span.begin + gap_start), uint32_t(span.begin + mb)});
    out.push_back({uint32_t(span.begin + mb), uint32_t(span.begin + me)});
    pos = gap_start = me;
  }
  if (gap_start < len) out.push_back({uint32_t(span.begin + gap_start), span.end});
}

}  // namespace

void PreTokenizer::split(std::string_view text, Span span, std::vector<Span>& out) const {
  if (span.end == span.begin) return;
  if (steps_.empty()) {
    out.push_back(span);
    return;
  }
  std::vector<Span> cur{span}, next;
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  for (size_t s = 0; s < steps_.size(); ++s) {
    std::vector<Span>& dst = s + 1 == steps_.size() ? out : next;
    if (&dst == &next) next.clear();
    for (const Span& piece : cur) split_isolated(*steps_[s], md, text, piece, dst);
    if (&dst == &next) std::swap(cur, next);
  }
  pcre2_match_data_free(md);
}

const std::vector<std::string>& deepseek_v3_split_patterns() {
  static const std::vector<std::string> kPatterns = {
      R"(\p{N}{1,3})",
      "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
      "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
  };
  return kPatterns;
}

}  // namespace dsv3
