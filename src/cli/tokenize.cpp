// `dsv3 tokenize`, `dsv3 detokenize` and `dsv3 tokenizer train`: the tokenizer from the command
// line. --tokenizer takes a tokenizer.json or a directory holding one.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "core/timer.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {
namespace {

std::string read_stdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

// Ids from a JSON array ("[1, 2]") or a comma/space separated list ("1,2 3").
Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    try {
      for (const auto& v : nlohmann::json::parse(text)) {
        if (!v.is_number_integer()) return Status::error("ids must be integers");
        ids.push_back(v.get<int32_t>());
      }
    } catch (const nlohmann::json::exception& e) {
      return Status::errorf("invalid JSON id list: {}", e.what());
    }
    return ids;
  }
  std::string token;
  auto flush = [&]() -> Status {
    if (token.empty()) return Status::ok();
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(token, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != token.size() || v < INT32_MIN || v > INT32_MAX) return Status::errorf("'{}' is not a token id", token);
    ids.push_back(int32_t(v));
    token.clear();
    return Status::ok();
  };
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      DSV3_TRY(flush());
    } else {
      token += c;
    }
  }
  DSV3_TRY(flush());
  return ids;
}

struct TokenizeOpts {
  std::string tokenizer;
  std::string text;
  bool has_text = false;
  bool bos = false;
  bool pieces = false;
};

RunFn setup_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOpts>();
  app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or a directory holding it")->required();
  app.add_option("--text", o->text, "text to encode (default: read stdin)");
  app.add_flag("--bos", o->bos, "prepend the BOS token");
  app.add_flag("--pieces", o->pieces, "print the pre-tokenizer's pieces (strings) instead of ids");
  return [o, &app] {
    auto tok = Tokenizer::load(o->tokenizer);
    if (!tok) return fail("tokenize", tok.message());
    const std::string text = app.count("--text") ? o->text : read_stdin();
    if (o->pieces) {
      std::printf("%s\n", nlohmann::json(tok->pre_tokenize(text)).dump().c_str());
      return 0;
    }
    const auto ids = tok->encode(text, o->bos);
    std::printf("%s\n", nlohmann::json(ids).dump().c_str());
    return 0;
  };
}

struct DetokenizeOpts {
  std::string tokenizer;
  std::string ids;
  bool skip_special = false;
};

RunFn setup_detokenize(CLI::App& app) {
  auto o = std::make_shared<DetokenizeOpts>();
  app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or a directory holding it")->required();
  app.add_option("--ids", o->ids, "ids as 1,2,3 or [1,2,3] (default: read stdin)");
  app.add_flag("--skip-special", o->skip_special, "drop special tokens (BOS, EOS, pad)");
  return [o, &app] {
    auto tok = Tokenizer::load(o->tokenizer);
    if (!tok) return fail("detokenize", tok.message());
    auto ids = parse_ids(app.count("--ids") ? o->ids : read_stdin());
    if (!ids) return fail("detokenize", ids.message());
    const std::string text = tok->decode(*ids, o->skip_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  };
}

struct TrainOpts {
  size_t vocab_size = 8192;
  uint64_t min_frequency = 1;
  std::string out;
  std::vector<std::string> corpus;
};

RunFn setup_tokenizer(CLI::App& app) {
  app.require_subcommand(1);
  CLI::App* train = app.add_subcommand("train", "learn a byte-level BPE tokenizer from text files");
  auto o = std::make_shared<TrainOpts>();
  train->add_option("--vocab-size", o->vocab_size, "total vocabulary size, special and byte tokens included")
      ->default_val(8192);
  train->add_option("--min-frequency", o->min_frequency, "never merge pairs seen fewer times")->default_val(1);
  train->add_option("--out", o->out, "output directory for tokenizer.json + tokenizer_config.json")->required();
  train->add_option("corpus", o->corpus, "text files")->required();
  return [o] {
    Timer timer;
    BpeTrainerOptions options;
    options.vocab_size = o->vocab_size;
    options.min_frequency = o->min_frequency;
    auto trainer = BpeTrainer::create(options);
    if (!trainer) return fail("tokenizer train", trainer.message());
    for (const auto& path : o->corpus) {
      if (Status s = trainer->add_file(path); !s) return fail("tokenizer train", s.message());
    }
    auto trained = trainer->train();
    if (!trained) return fail("tokenizer train", trained.message());
    if (Status s = trained->save(o->out); !s) return fail("tokenizer train", s.message());
    std::fprintf(stderr, "trained vocab %zu (%zu merges) from %zu distinct pre-tokens in %.2f s -> %s\n",
                 trained->vocab.size(), trained->merges.size(), trainer->distinct_pre_tokens(), timer.seconds(),
                 o->out.c_str());
    if (trained->vocab.size() < o->vocab_size)
      std::fprintf(stderr, "note: the corpus supports only %zu tokens (asked for %zu)\n", trained->vocab.size(),
                   o->vocab_size);
    return 0;
  };
}

DSV3_COMMAND("tokenize", "encode text to token ids (JSON array)", setup_tokenize);
DSV3_COMMAND("detokenize", "decode token ids to text", setup_detokenize);
DSV3_COMMAND("tokenizer", "tokenizer tools (train)", setup_tokenizer);

}  // namespace
}  // namespace dsv3::cli
