// `dsv3 data prepare`: tokenizes text corpora into the binary shards `dsv3 train` reads
// (format in train/data.h).
#include <memory>

#include "cli/command.h"
#include "core/timer.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace dsv3::cli {
namespace {

struct PrepareOpts {
  std::string tokenizer;
  PrepareOptions prepare;
  std::vector<std::string> inputs;
};

RunFn setup_data(CLI::App& app) {
  auto opts = std::make_shared<PrepareOpts>();
  app.require_subcommand(1);
  CLI::App* prep = app.add_subcommand("prepare", "tokenize text / JSONL files into training shards");
  prep->add_option("--tokenizer", opts->tokenizer, "tokenizer directory (tokenizer.json)")->required();
  prep->add_option("--out", opts->prepare.out_dir, "output directory (new or empty)")->required();
  prep->add_option("--val-fraction", opts->prepare.val_fraction, "fraction of documents held out for validation")
      ->default_val(0.01);
  prep->add_option("--seed", opts->prepare.seed, "seed that picks the validation documents")->default_val(0);
  prep->add_flag("--doc-per-file", opts->prepare.doc_per_file,
                 "plain text: each file is one document (default: blank-line-separated blocks)");
  prep->add_option("--shard-tokens", opts->prepare.shard_tokens, "tokens per shard")
      ->default_val(int64_t(1) << 25);
  prep->add_option("inputs", opts->inputs, "input files (*.jsonl: one {\"text\": ...} per line)")->required();
  return [opts, prep] {
    if (!prep->parsed()) return fail("data", "unknown subcommand");
    Result<Tokenizer> tok = Tokenizer::load(opts->tokenizer);
    if (!tok.is_ok()) return fail("data", tok.message());
    if (tok->eos_id() < 0) return fail("data", opts->tokenizer + ": the tokenizer has no EOS token");
    PrepareOptions po = opts->prepare;
    po.vocab_size = int64_t(tok->vocab_size());
    po.eos_id = tok->eos_id();
    Tokenizer t = *tok;
    Timer timer;
    Result<PrepareStats> st =
        prepare_dataset(po, opts->inputs, [t](std::string_view text) { return t.encode(text); });
    if (!st.is_ok()) return fail("data", st.message());
    std::printf("prepared %s: vocab %lld (%s), eos %d\n", po.out_dir.c_str(), (long long)po.vocab_size,
                po.vocab_size <= 65535 ? "uint16" : "uint32", po.eos_id);
    std::printf("  train: %lld documents, %lld tokens, %lld shards\n", (long long)st->train.documents,
                (long long)st->train.tokens, (long long)st->train.shards);
    std::printf("  val:   %lld documents, %lld tokens, %lld shards\n", (long long)st->val.documents,
                (long long)st->val.tokens, (long long)st->val.shards);
    double s = timer.seconds();
    std::printf("  %.2f s, %.0f tokens/s\n", s, double(st->train.tokens + st->val.tokens) / std::max(s, 1e-9));
    return 0;
  };
}

DSV3_COMMAND("data", "prepare training data (tokenize into binary shards)", setup_data);

}  // namespace
}  // namespace dsv3::cli
