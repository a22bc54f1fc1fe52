// `dsv3 export`: a training checkpoint as a Hugging Face model directory (F32, BF16 or the
// block-FP8 layout DeepSeek publishes), loadable by `dsv3` inference and by HF tooling.
#include <memory>

#include "cli/command.h"
#include "train/checkpoint.h"
#include "train/export.h"

namespace dsv3::cli {
namespace {

struct ExportOpts {
  std::string checkpoint, out, tokenizer, dtype = "bf16";
  int shards = 1;
};

RunFn setup_export(CLI::App& app) {
  auto o = std::make_shared<ExportOpts>();
  app.add_option("--checkpoint", o->checkpoint, "a training checkpoint, or a run directory (its newest valid one)")
      ->required();
  app.add_option("--out", o->out, "output model directory")->required();
  app.add_option("--dtype", o->dtype, "bf16, fp8 (E4M3 + 128x128 scales) or f32")
      ->check(CLI::IsMember({"bf16", "fp8", "f32"}))
      ->capture_default_str();
  app.add_option("--tokenizer", o->tokenizer, "tokenizer directory to copy (tokenizer.json, tokenizer_config.json)");
  app.add_option("--shards", o->shards, "safetensors files (> 1 writes an index)")->capture_default_str();
  return [o] {
    std::vector<std::string> notes;
    Result<std::string> ck = find_resume_checkpoint(o->checkpoint, &notes);
    for (const std::string& n : notes) std::printf("export: %s\n", n.c_str());
    if (!ck.is_ok()) return fail("export", ck.message());
    Result<ExportDType> dtype = parse_export_dtype(o->dtype);
    if (!dtype.is_ok()) return fail("export", dtype.message());
    ExportOptions eo{*ck, o->out, o->tokenizer, *dtype, o->shards};
    Result<ExportStats> st = export_hf_model(eo);
    if (!st.is_ok()) return fail("export", st.message());
    std::printf("exported %s -> %s: %lld tensors, %.1f MiB (%s)\n", ck->c_str(), o->out.c_str(),
                (long long)st->tensors, double(st->bytes) / double(1 << 20), o->dtype.c_str());
    return 0;
  };
}

DSV3_COMMAND("export", "export a training checkpoint as a Hugging Face model directory", setup_export);

}  // namespace
}  // namespace dsv3::cli
