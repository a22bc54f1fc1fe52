// The `dsv3 serve` process: SIGTERM drains and exits 0; a bounded load test with many
// concurrent streaming clients ends with zero 5xx, well-formed streams and no leaked pages.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>

#include "server/server_fixture.h"
#include "support/checkpoint_writer.h"

namespace dsv3::testing {
namespace {

// A `dsv3 serve --port 0` child on a random-weight model; learns the port from its first line.
class ServeProcess {
 public:
  // extra: more options; model_args replace the default random-weight model.
  explicit ServeProcess(const std::vector<std::string>& extra = {}, std::vector<std::string> model_args = {}) {
    dir_ = std::filesystem::temp_directory_path() / ("dsv3_serve_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "config.json") << model_config_to_json(server_test_config());
    if (model_args.empty())
      model_args = {"--random-config", (dir_ / "config.json").string(), "--tokenizer", trained_tokenizer_dir()};
    std::vector<std::string> args = {DSV3_BINARY, "serve", "--port", "0", "--shutdown-grace", "5"};
    args.insert(args.end(), model_args.begin(), model_args.end());
    args.insert(args.end(), extra.begin(), extra.end());
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    FILE* out = fdopen(fds[0], "r");
    char line[512] = {0};
    if (!fgets(line, sizeof line, out)) throw std::runtime_error("dsv3 serve printed nothing");
    // "dsv3 serve: listening on http://HOST:PORT (...)" (parsed by hand: GCC 12 warns falsely
    // about std::regex under ASan).
    const std::string text = line;
    const size_t host = text.find("http://");
    const size_t colon = host == std::string::npos ? host : text.find(':', host + 7);
    if (colon == std::string::npos) throw std::runtime_error("no port in: " + text);
    port_ = std::atoi(text.c_str() + colon + 1);
    out_ = out;
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_) fclose(out_);
    std::filesystem::remove_all(dir_);
  }
  int port() const { return port_; }
  void signal(int sig) { kill(pid_, sig); }
  // Exit status after a normal exit, -1 otherwise (or after the timeout).
  int wait_exit(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  FILE* out_ = nullptr;
  bool reaped_ = false;
};

TEST(ServeProcess, SigtermFinishesInFlightStreamsStopsAcceptingAndExitsZero) {
  ServeProcess proc;
  httplib::Client cli("127.0.0.1", proc.port());
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  std::atomic<int> events{0};
  auto stream = std::async(std::launch::async, [&] {
    json body = chat_body("keep going", 300, 1, true);
    body["ignore_eos"] = true;  // a fixed length whatever the sampled tokens
    return post_sse(proc.port(), "/v1/chat/completions", body);
  });
  // Wait until the stream is running, then ask the server to stop.
  for (int i = 0; i < 2000; ++i) {
    auto m = cli.Get("/metrics");
    if (m && m->body.find("dsv3_active_sequences 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  proc.signal(SIGTERM);
  SseResult r = stream.get();
  EXPECT_TRUE(r.well_formed);
  EXPECT_TRUE(r.done) << "the in-flight stream ends with [DONE]";
  EXPECT_EQ(r.finish_reason, "length") << "finished, not cancelled";
  EXPECT_EQ(proc.wait_exit(std::chrono::seconds(20)), 0);
  httplib::Client after("127.0.0.1", proc.port());
  after.set_connection_timeout(std::chrono::seconds(1));
  auto refused = after.Get("/health");
  EXPECT_FALSE(refused) << "still accepting after exit";
}

TEST(ServeProcess, ServesACheckpointDirectory) {
  const std::string dir = make_temp_dir("serve_checkpoint");
  ASSERT_TRUE(write_random_checkpoint(dir, server_test_config(), {.dtype = DType::BF16}).is_ok());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(trained_tokenizer_dir() + "/" + f, dir + "/" + f);
  ServeProcess proc({"--model-name", "tiny-bf16"}, {"--model", dir});
  httplib::Client cli("127.0.0.1", proc.port());
  cli.set_read_timeout(std::chrono::seconds(60));
  json body = chat_body("Hello", 6, 1);
  body["model"] = "tiny-bf16";
  auto res = cli.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["usage"]["completion_tokens"], 6);
  proc.signal(SIGTERM);
  EXPECT_EQ(proc.wait_exit(std::chrono::seconds(20)), 0);
}

TEST(ServeProcess, DefaultModelMissingIsExplained) {
  // The binary would find the repository's default model next to its build tree: point the
  // default elsewhere.
  const std::string cmd = std::string("cd ") + std::filesystem::temp_directory_path().string() +
                          " && DSV3_DEFAULT_MODEL=/nonexistent/default-model " + DSV3_BINARY + " serve --port 0 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(out.find("assets/default-model"), std::string::npos) << out;
}

TEST(ServeProcess, LoadTestManyConcurrentStreams) {
  // 24 clients x 3 streamed requests against a batch of 8 and a queue of 8: some requests get
  // 429 and retry. Bounded: 72 requests of at most 24 tokens.
  ServeProcess proc({"--max-batch", "8", "--max-queue", "8", "--http-threads", "64"});
  const int clients = 24, per_client = 3;
  std::atomic<int> ok{0}, retried{0}, bad{0}, server_errors{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int k = 0; k < per_client; ++k) {
        json body = chat_body("load " + std::to_string(c), 8 + (c + k) % 17, uint64_t(c * 10 + k), true);
        for (int attempt = 0; attempt < 200; ++attempt) {
          SseResult r = post_sse(proc.port(), "/v1/chat/completions", body);
          if (r.status >= 500) ++server_errors;
          if (r.status == 429) {
            ++retried;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
          }
          if (r.status == 200 && r.done && r.well_formed && !r.finish_reason.empty()) {
            ++ok;
          } else {
            ++bad;
            std::printf("bad stream: error %d status %d done %d well_formed %d finish '%s' chunks %zu bytes %zu\n", r.error, r.status, r.done,
                        r.well_formed, r.finish_reason.c_str(), r.chunks.size(), r.bytes);
          }
          break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(server_errors.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ok.load(), clients * per_client);
  httplib::Client cli("127.0.0.1", proc.port());
  auto m = cli.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("dsv3_kv_cache_pages_used 0\n"), std::string::npos);
  EXPECT_NE(m->body.find("dsv3_active_sequences 0\n"), std::string::npos);
  EXPECT_NE(m->body.find("dsv3_queue_depth 0\n"), std::string::npos);
  EXPECT_EQ(m->body.find("code=\"5"), std::string::npos) << "no 5xx in the request counters";
  std::printf("load test: %d streams, %d answers of 429 retried\n", ok.load(), retried.load());
  proc.signal(SIGTERM);
  EXPECT_EQ(proc.wait_exit(std::chrono::seconds(20)), 0);
}

}  // namespace
}  // namespace dsv3::testing
