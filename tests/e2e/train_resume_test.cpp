// End to end: `dsv3 data prepare` then `dsv3 train` on a micro config; a run killed with
// SIGKILL in the middle of writing a checkpoint and then resumed with --resume logs exactly
// the losses of an uninterrupted run (compared as doubles with ==).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/json.h"
#include "support/temp_dir.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::string kBinary = DSV3_BINARY;
const std::string kFixtures = std::string(DSV3_TEST_DATA_DIR) + "/fixtures";

struct RunResult {
  int exit_code = -1;
  int signal = 0;
  std::string output;
};

RunResult run(const std::string& args, const std::string& env, const TempDir& dir) {
  const std::string log = dir / "out.log";
  std::string cmd = env + " " + kBinary + " " + args + " > " + log + " 2>&1";
  int status = std::system(cmd.c_str());
  RunResult r;
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    if (r.exit_code > 128) r.signal = r.exit_code - 128;  // the shell reports a killed child so
  }
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

// step -> loss of the train records, and step -> val_loss of the eval records.
std::pair<std::map<int64_t, double>, std::map<int64_t, double>> losses(const std::string& metrics) {
  std::map<int64_t, double> train, eval;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    Json j = Json::parse(line);
    if (j["type"] == "train") {
      EXPECT_EQ(train.count(j["step"]), 0u) << "duplicate step " << j["step"];
      train[j["step"]] = j["loss"];
    } else {
      eval[j["step"]] = j["val_loss"];
    }
  }
  return {train, eval};
}

class TrainResume : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string corpus;
    const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "then", "ran", "in", "park", "we", "train"};
    uint64_t x = 1;
    for (int d = 0; d < 120; ++d) {
      for (int w = 0; w < 30; ++w) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        corpus += std::string(words[(x >> 33) % 12]) + " ";
      }
      corpus += ".\n\n";
    }
    dir_.write("corpus.txt", corpus);
    RunResult r = run("data prepare --tokenizer " + kFixtures + "/tiny_tokenizer --out " + (dir_ / "data") +
                          " --val-fraction 0.05 " + (dir_ / "corpus.txt"),
                      "", dir_);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  std::string train_args(const std::string& out) const {
    // One thread: bit-exactness holds for any fixed count, and one is fastest on a busy machine.
    return "train --config " + kFixtures + "/train/micro-train.json --data " + (dir_ / "data") + " --out " + out +
           " --steps 12 --batch 2 --seq-len 16 --save-every 3 --eval-every 4 --eval-batches 2 --lr 1e-2"
           " --warmup 2 --bias-update-speed 0.01 --threads 1";
  }

  TempDir dir_{"e2e-train"};
};

TEST_F(TrainResume, KilledMidSaveThenResumedEqualsUninterrupted) {
  const std::string a = dir_ / "a", b = dir_ / "b";
  RunResult full = run(train_args(a), "", dir_);
  ASSERT_EQ(full.exit_code, 0) << full.output;
  EXPECT_NE(full.output.find("parameters:"), std::string::npos);
  EXPECT_NE(full.output.find("memory: parameters"), std::string::npos);
  auto [want_train, want_eval] = losses(a + "/metrics.jsonl");
  ASSERT_EQ(want_train.size(), 12u);
  ASSERT_EQ(want_eval.size(), 3u);

  // SIGKILL while the step-9 checkpoint is half written.
  RunResult killed = run(train_args(b), "DSV3_TEST_KILL_AT_STEP=9", dir_);
  ASSERT_EQ(killed.signal, 9) << killed.output;
  EXPECT_NE(killed.output.find("step 9/12"), std::string::npos);
  EXPECT_FALSE(fs::exists(b + "/step-000009"));
  bool tmp_left = false;
  for (const auto& e : fs::directory_iterator(b)) tmp_left |= e.path().filename().string().find(".tmp-") != std::string::npos;
  EXPECT_TRUE(tmp_left);  // the half-written checkpoint is there, unpublished
  std::ifstream latest(b + "/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step-000006");

  // A fresh run into the same directory is refused; --resume continues from step 6.
  RunResult again = run(train_args(b), "", dir_);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;
  RunResult resumed = run("train --resume " + b + " --threads 1", "", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("at step 6"), std::string::npos) << resumed.output;

  auto [got_train, got_eval] = losses(b + "/metrics.jsonl");
  EXPECT_EQ(got_train, want_train);  // exact double equality, all 12 steps
  EXPECT_EQ(got_eval, want_eval);
  for (const auto& e : fs::directory_iterator(b)) EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos);
}

TEST_F(TrainResume, KilledBeforeLatestMovesAndCorruptNewestFallsBack) {
  const std::string a = dir_ / "a", b = dir_ / "b";
  ASSERT_EQ(run(train_args(a), "", dir_).exit_code, 0);
  auto [want_train, want_eval] = losses(a + "/metrics.jsonl");

  // Killed after step-000006 was renamed into place but before `latest` moved to it.
  RunResult killed = run(train_args(b), "DSV3_TEST_KILL_AT_STEP=6:rename", dir_);
  ASSERT_EQ(killed.signal, 9) << killed.output;
  EXPECT_TRUE(fs::exists(b + "/step-000006/state.json"));
  // Corrupt the newest checkpoint too and drop `latest`: resume must skip step 6, say so, and
  // take the newest valid one (step 3).
  {
    std::fstream f(b + "/step-000006/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  fs::remove(b + "/latest");
  // Given directly, the corrupt checkpoint is refused with a clear error.
  RunResult bad = run("train --resume " + b + "/step-000006 --threads 1", "", dir_);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("CRC-32"), std::string::npos) << bad.output;
  RunResult resumed = run("train --resume " + b + " --threads 1", "", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("skipping invalid checkpoint"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("at step 3"), std::string::npos) << resumed.output;
  auto [got_train, got_eval] = losses(b + "/metrics.jsonl");
  EXPECT_EQ(got_train, want_train);
  EXPECT_EQ(got_eval, want_eval);

}

// --precision fp8: runs end to end, prints its memory accounting, keeps its precision when
// resumed (the resumed run logs the uninterrupted run's losses exactly) and refuses to change it.
TEST_F(TrainResume, Fp8RunResumesInFp8) {
  const std::string a = dir_ / "a", b = dir_ / "b";
  const std::string args = train_args(a) + " --precision fp8";
  RunResult full = run(args, "", dir_);
  ASSERT_EQ(full.exit_code, 0) << full.output;
  EXPECT_NE(full.output.find("precision fp8: optimizer moments bf16"), std::string::npos) << full.output;
  auto [want_train, want_eval] = losses(a + "/metrics.jsonl");
  ASSERT_EQ(want_train.size(), 12u);

  RunResult killed = run(train_args(b) + " --precision fp8", "DSV3_TEST_KILL_AT_STEP=9", dir_);
  ASSERT_EQ(killed.signal, 9) << killed.output;
  RunResult changed = run("train --resume " + b + " --threads 1 --precision bf16", "", dir_);
  EXPECT_NE(changed.exit_code, 0);
  EXPECT_NE(changed.output.find("--precision cannot change"), std::string::npos) << changed.output;
  RunResult resumed = run("train --resume " + b + " --threads 1", "", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("precision fp8"), std::string::npos) << resumed.output;
  auto [got_train, got_eval] = losses(b + "/metrics.jsonl");
  EXPECT_EQ(got_train, want_train);
  EXPECT_EQ(got_eval, want_eval);

  // The fp32 run of the same seed differs (the recipe is on) but not by much.
  const std::string c = dir_ / "c";
  ASSERT_EQ(run(train_args(c), "", dir_).exit_code, 0);
  auto [f32_train, f32_eval] = losses(c + "/metrics.jsonl");
  EXPECT_NE(f32_train.at(12), want_train.at(12));
  EXPECT_NEAR(f32_train.at(1), want_train.at(1), 0.05 * f32_train.at(1));
}

}  // namespace
}  // namespace dsv3
