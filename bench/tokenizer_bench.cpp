// Tokenizer encode/decode throughput in MB/s of input text.
//   DSV3_BENCH_TOKENIZER=assets/deepseek-v3-tokenizer DSV3_BENCH_TEXT=corpus.txt
//     build/bench/dsv3_bench --benchmark_filter=Tokenizer
// Encode/Cold builds a new tokenizer each iteration (empty piece cache); Encode/Warm reuses
// one, as a server does. Both run on one thread: encode() of one text is sequential.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tokenizer/tokenizer.h"

namespace {

struct BenchInput {
  std::string tokenizer_path;
  std::string text;
  bool ok = false;
};

const BenchInput& input() {
  static const BenchInput in = [] {
    BenchInput b;
    const char* tok = std::getenv("DSV3_BENCH_TOKENIZER");
    const char* text = std::getenv("DSV3_BENCH_TEXT");
    if (!tok || !text) return b;
    std::ifstream f(text, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    b.tokenizer_path = tok;
    b.text = ss.str();
    b.ok = f.good() || f.eof();
    return b;
  }();
  return in;
}

void run_encode(benchmark::State& state, bool cold) {
  const BenchInput& in = input();
  if (!in.ok) {
    state.SkipWithError("set DSV3_BENCH_TOKENIZER (tokenizer.json or dir) and DSV3_BENCH_TEXT (a text file)");
    return;
  }
  auto tok = dsv3::Tokenizer::load(in.tokenizer_path);
  if (!tok) {
    state.SkipWithError(tok.message().c_str());
    return;
  }
  size_t tokens = 0;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      tok = dsv3::Tokenizer::load(in.tokenizer_path);
      state.ResumeTiming();
    }
    auto ids = tok->encode(in.text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(in.text.size()));
  state.counters["tokens"] = double(tokens);
  state.counters["bytes_per_token"] = double(in.text.size()) / double(tokens ? tokens : 1);
}

void BM_TokenizerEncodeCold(benchmark::State& state) { run_encode(state, true); }
void BM_TokenizerEncodeWarm(benchmark::State& state) { run_encode(state, false); }

void BM_TokenizerDecode(benchmark::State& state) {
  const BenchInput& in = input();
  if (!in.ok) {
    state.SkipWithError("set DSV3_BENCH_TOKENIZER and DSV3_BENCH_TEXT");
    return;
  }
  auto tok = dsv3::Tokenizer::load(in.tokenizer_path);
  if (!tok) {
    state.SkipWithError(tok.message().c_str());
    return;
  }
  const auto ids = tok->encode(in.text);
  for (auto _ : state) {
    auto text = tok->decode(ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(in.text.size()));
}

BENCHMARK(BM_TokenizerEncodeCold)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_TokenizerEncodeWarm)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_TokenizerDecode)->Unit(benchmark::kMillisecond);

}  // namespace
