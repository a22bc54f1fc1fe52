#include "cli/args.h"

#include <cctype>
#include <charconv>

#include "core/parallel_for.h"

namespace dsv3::cli {

Result<std::vector<int32_t>> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && (std::isspace(static_cast<unsigned char>(text[i])) || text[i] == '[' || text[i] == ']'))
      ++i;
  };
  skip();
  while (i < text.size()) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    if (ec != std::errc() || v < 0 || v > INT32_MAX) {
      return Status::errorf("bad token id at offset {} of '{}': expected a non-negative integer", i, text);
    }
    ids.push_back(int32_t(v));
    i = size_t(end - text.data());
    skip();
    if (i < text.size()) {
      if (text[i] != ',') return Status::errorf("expected ',' at offset {} of '{}'", i, text);
      ++i;
      skip();
    }
  }
  if (ids.empty()) return Status::error("the token list is empty");
  return ids;
}

void apply_threads(int threads) {
  if (threads > 0) set_num_threads(threads);
}

}  // namespace dsv3::cli
