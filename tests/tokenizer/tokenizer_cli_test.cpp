// End to end: `dsv3 tokenize`, `dsv3 detokenize` and `dsv3 tokenizer train` as a user runs them.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tokenizer/tokenizer_test_util.h"

namespace dsv3 {
namespace {

struct CmdResult {
  int exit_code;
  std::string out;
};

// Runs a shell command line, capturing stdout (stderr is folded in when merge_stderr).
CmdResult run(const std::string& cmd, bool merge_stderr = false) {
  const std::string full = cmd + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(full.c_str(), "r");
  CmdResult r{-1, ""};
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string kBin = DSV3_BINARY;
std::string trained() { return testing::golden_dir() + "/trained"; }

TEST(TokenizerCli, TokenizeDetokenizeRoundTrip) {
  auto tok = Tokenizer::load(trained());
  ASSERT_TRUE(tok.is_ok());
  const CmdResult enc = run(kBin + " tokenize --tokenizer " + trained() + " --text 'And God said, Let there be light.' --bos");
  ASSERT_EQ(enc.exit_code, 0);
  const auto ids = nlohmann::json::parse(enc.out).get<std::vector<int32_t>>();
  EXPECT_EQ(ids, tok->encode("And God said, Let there be light.", true));
  // stdin forms: JSON array and comma list; the file path form of --tokenizer.
  const CmdResult dec = run("echo '" + enc.out.substr(0, enc.out.size() - 1) + "' | " + kBin + " detokenize --skip-special --tokenizer " +
                      trained() + "/tokenizer.json");
  ASSERT_EQ(dec.exit_code, 0);
  EXPECT_EQ(dec.out, "And God said, Let there be light.\n");
  std::string list;
  for (size_t i = 1; i < ids.size(); ++i) list += (i > 1 ? "," : "") + std::to_string(ids[i]);
  const CmdResult dec2 = run(kBin + " detokenize --tokenizer " + trained() + " --ids " + list);
  EXPECT_EQ(dec2.out, "And God said, Let there be light.\n");
  const CmdResult stdin_enc = run("printf 'light' | " + kBin + " tokenize --tokenizer " + trained());
  EXPECT_EQ(nlohmann::json::parse(stdin_enc.out).get<std::vector<int32_t>>(), tok->encode("light"));
}

TEST(TokenizerCli, ErrorsGoToStderrWithNonZeroExit) {
  CmdResult r = run(kBin + " tokenize --tokenizer /nonexistent/dir --text hi", true);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;
  r = run(kBin + " detokenize --tokenizer " + trained() + " --ids 1,x,3", true);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("'x' is not a token id"), std::string::npos) << r.out;
  r = run(kBin + " tokenizer train --vocab-size 10 --out /tmp/never " + testing::golden_dir() + "/train_fixture.txt", true);
  EXPECT_NE(r.exit_code, 0);
}

TEST(TokenizerCli, TrainWritesLoadableTokenizer) {
  const auto dir = std::filesystem::temp_directory_path() / "dsv3_cli_train_test";
  std::filesystem::remove_all(dir);
  const CmdResult r = run(kBin + " tokenizer train --vocab-size 600 --out " + dir.string() + " " + testing::golden_dir() +
                    "/train_fixture.txt");
  ASSERT_EQ(r.exit_code, 0);
  auto tok = Tokenizer::load(dir.string());
  ASSERT_TRUE(tok.is_ok()) << tok.message();
  EXPECT_EQ(tok->vocab_size(), 600u);
  EXPECT_EQ(tok->decode(tok->encode("In the beginning")), "In the beginning");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dsv3
