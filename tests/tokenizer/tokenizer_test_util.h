// Shared fixtures for the tokenizer tests: locating and loading the tokenizer files once.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace dsv3::testing {

// The real DeepSeek-V3 tokenizer, fetched by scripts/setup.sh (scripts/fetch_tokenizer.sh)
// into assets/; tests fail (not skip) without it.
inline std::string deepseek_v3_tokenizer_dir() { return std::string(DSV3_TEST_DATA_DIR) + "/../assets/deepseek-v3-tokenizer"; }

inline std::string golden_dir() { return std::string(DSV3_TEST_DATA_DIR) + "/golden/tokenizer"; }

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot open " << path;
  return in ? nlohmann::json::parse(in) : nlohmann::json();
}

// Loaded once per test binary (the 7.8 MB file takes a moment to parse).
inline const Tokenizer* deepseek_v3_tokenizer() {
  static const Result<Tokenizer> tok = Tokenizer::load(deepseek_v3_tokenizer_dir());
  if (!tok.is_ok()) {
    ADD_FAILURE() << "cannot load the DeepSeek-V3 tokenizer (" << tok.message()
                  << "); run scripts/setup.sh, which fetches it into assets/deepseek-v3-tokenizer";
    return nullptr;
  }
  return &tok.value();
}

}  // namespace dsv3::testing
