// `dsv3 fp8 study` end to end: the JSON shape the issue specifies, and bad options rejected.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <cstdint>
#include <string>

namespace dsv3 {
namespace {

struct CmdResult {
  int status;
  std::string out;
};

CmdResult run_dsv3(const std::string& args) {
  const std::string cmd = std::string(DSV3_BINARY) + " " + args + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  return {pclose(pipe), out};
}

TEST(Fp8Cli, StudyJson) {
  // U[0,1) entries: no output near zero, so the per-element maximum is a stable measure.
  const CmdResult r = run_dsv3("fp8 study --json --dist uniform --outputs 4 --seed 3");
  ASSERT_EQ(r.status, 0);
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 6u);
  int64_t k = 512;
  double prev_unpromoted = 0;
  for (const auto& row : j) {
    ASSERT_EQ(row.size(), 4u);
    EXPECT_EQ(row.at("K").get<int64_t>(), k);
    EXPECT_EQ(row.at("mantissa_bits").get<int>(), 14);
    const double u = row.at("err_unpromoted").get<double>(), p = row.at("err_promoted").get<double>();
    EXPECT_GT(u, prev_unpromoted);  // grows with K without promotion
    EXPECT_LT(p, u);
    prev_unpromoted = u;
    k *= 2;
  }
  EXPECT_GE(j[3].at("err_unpromoted").get<double>(), 10 * j[3].at("err_promoted").get<double>());  // K = 4096
}

TEST(Fp8Cli, StudyOptions) {
  const CmdResult wide = run_dsv3("fp8 study --json --mantissa-bits 24 --outputs 2");
  ASSERT_EQ(wide.status, 0);
  EXPECT_EQ(nlohmann::json::parse(wide.out)[0].at("mantissa_bits").get<int>(), 24);
  const CmdResult table = run_dsv3("fp8 study --outputs 2");
  ASSERT_EQ(table.status, 0);
  EXPECT_NE(table.out.find("16384"), std::string::npos);
  EXPECT_NE(run_dsv3("fp8 study --dist cauchy").status, 0);
  EXPECT_NE(run_dsv3("fp8 study --mantissa-bits 40").status, 0);
  EXPECT_NE(run_dsv3("fp8").status, 0);
}

}  // namespace
}  // namespace dsv3
