// `dsv3 train`: trains a DeepSeek-V3-family model from a config (or resumes a checkpoint) on
// prepared token shards (`dsv3 data prepare`), with checkpoints that resume bit for bit.
#include <cmath>
#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "core/parallel_for.h"
#include "io/atomic_file.h"
#include "model/config.h"
#include "train/trainer.h"
#include "train/train_model_adapter.h"

namespace dsv3::cli {
namespace {

namespace fs = std::filesystem;

struct TrainOpts {
  std::string config, resume, data;
  TrainerOptions t;
  int threads = 0;
  std::string optimizer = "adamw";
  std::string precision = "fp32";
  bool bf16_moments = false;
  bool recompute = false;
  double init_std = 0.006;
  double final_lr = -1;
  double min_lr = 2.2e-5;
  int64_t warmup = -1;
};

std::string gib(int64_t bytes) {
  if (bytes >= (int64_t(1) << 30)) return fmt::format("{:.2f} GiB", double(bytes) / double(1 << 30));
  if (bytes >= (int64_t(1) << 20)) return fmt::format("{:.1f} MiB", double(bytes) / double(1 << 20));
  return fmt::format("{:.1f} KiB", double(bytes) / double(1 << 10));
}

RunFn setup_train(CLI::App& app) {
  auto o = std::make_shared<TrainOpts>();
  TrainerOptions& t = o->t;
  t.schedule.peak_lr = 2.2e-4;
  std::vector<CLI::Option*> run_opts;  // options that override a resumed run's saved values
  auto add = [&](const char* name, auto& var, const char* help) {
    CLI::Option* opt = app.add_option(name, var, help)->capture_default_str();
    run_opts.push_back(opt);
    return opt;
  };
  auto* config = app.add_option("--config", o->config, "model config.json (e.g. tests/golden/configs/tiny-train.json)");
  auto* resume = app.add_option("--resume", o->resume, "a checkpoint, or a run directory (its newest valid checkpoint)");
  config->excludes(resume);
  add("--data", o->data, "prepared data directory (dsv3 data prepare)");
  add("--out", t.out_dir, "run directory: checkpoints, metrics.jsonl (default with --resume: the checkpoint's run)");
  add("--steps", t.steps, "optimizer steps in total");
  add("--batch", t.batch, "sequences per micro-batch");
  add("--seq-len", t.seq_len, "tokens per sequence");
  add("--grad-accum", t.grad_accum, "micro-batches per step");
  add("--lr", t.schedule.peak_lr, "peak learning rate");
  add("--min-lr", o->min_lr, "learning rate after the cosine decay");
  add("--final-lr", o->final_lr, "learning rate of the last tail (default: --min-lr)");
  add("--warmup", o->warmup, "warm-up steps (default: 1% of --steps, at least 1)");
  add("--seed", t.seed, "seed of initialization and data order");
  app.add_option("--threads", o->threads, "threads (default: all; results are deterministic per thread count)");
  add("--eval-every", t.eval_every, "validate every N steps (0: at the end only)");
  add("--eval-batches", t.eval_batches, "validation batches");
  add("--save-every", t.save_every, "checkpoint every N steps (0: at the end only)");
  add("--keep", t.keep, "checkpoints to keep (0: all)");
  add("--mtp-weight", t.mtp_weight, "λ, weight of the MTP loss");
  add("--balance-alpha", t.balance_alpha, "α, weight of the sequence-wise balance loss");
  add("--bias-update-speed", t.bias_update_speed, "γ of the aux-loss-free bias update (0: off)");
  add("--optimizer", o->optimizer, "adamw or sgd")->check(CLI::IsMember({"adamw", "sgd"}));
  add("--clip", t.clip, "global gradient-norm clipping threshold (0: off)");
  add("--weight-decay", t.optimizer.weight_decay, "decoupled weight decay (matrices only)");
  add("--peak-gflops", t.peak_gflops, "peak GFLOP/s of the machine for MFU");
  auto* precision = app.add_option("--precision", o->precision,
                                   "GEMM precision of the MLA and MLP/expert projections: fp32, bf16 or fp8 "
                                   "(bf16 and fp8 also store AdamW moments in BF16)")
                        ->check(CLI::IsMember({"fp32", "bf16", "fp8"}))
                        ->capture_default_str();
  app.add_flag("--bf16-moments", o->bf16_moments, "store AdamW moments in BF16 (as the FP8 recipe does)");
  app.add_flag("--recompute", o->recompute, "recompute norms and MLA up-projections in backward");
  app.add_option("--init-std", o->init_std, "initialization std of matrices (report: 0.006)")->capture_default_str();

  return [o, config, resume, run_opts, precision] {
    TrainerOptions& t = o->t;
    if (config->count() == 0 && resume->count() == 0) return fail("train", "give --config FILE or --resume DIR");
    if (o->threads > 0) set_num_threads(o->threads);

    std::string config_json, checkpoint;
    if (resume->count() > 0) {
      std::vector<std::string> notes;
      Result<std::string> found = find_resume_checkpoint(o->resume, &notes);
      for (const std::string& n : notes) std::printf("resume: %s\n", n.c_str());
      if (!found.is_ok()) return fail("train", found.message());
      checkpoint = *found;
      Result<TrainState> st = read_checkpoint_state(checkpoint);
      if (!st.is_ok()) return fail("train", st.message());
      // Saved options first, then whatever the command line gives explicitly.
      TrainerOptions saved = t;
      Status s = trainer_options_from_json(st->options, saved);
      if (!s.is_ok()) return fail("train", s.message());
      auto overridden = [&](const char* name) {
        for (CLI::Option* opt : run_opts)
          if (opt->check_lname(name + 2) && opt->count() > 0) return true;
        return false;
      };
      std::string saved_data = st->options.value("data", "");
      if (!overridden("--data")) o->data = saved_data;
      if (!overridden("--out")) saved.out_dir = fs::path(checkpoint).parent_path().string();
      else saved.out_dir = t.out_dir;
#define DSV3_KEEP_OR_OVERRIDE(flag, field) \
  if (overridden(flag)) saved.field = t.field;
      DSV3_KEEP_OR_OVERRIDE("--steps", steps)
      DSV3_KEEP_OR_OVERRIDE("--eval-every", eval_every)
      DSV3_KEEP_OR_OVERRIDE("--eval-batches", eval_batches)
      DSV3_KEEP_OR_OVERRIDE("--save-every", save_every)
      DSV3_KEEP_OR_OVERRIDE("--keep", keep)
      DSV3_KEEP_OR_OVERRIDE("--peak-gflops", peak_gflops)
      DSV3_KEEP_OR_OVERRIDE("--bias-update-speed", bias_update_speed)
#undef DSV3_KEEP_OR_OVERRIDE
      for (const char* fixed : {"--batch", "--seq-len", "--grad-accum", "--seed", "--optimizer", "--mtp-weight",
                                "--balance-alpha", "--lr", "--min-lr", "--final-lr", "--warmup", "--clip",
                                "--weight-decay"})
        if (overridden(fixed))
          return fail("train", fmt::format("{} cannot change on resume (it is part of the run being resumed)", fixed));
      if (o->bf16_moments) return fail("train", "--bf16-moments cannot change on resume");
      const std::string saved_precision = st->options.value("precision", "fp32");
      if (precision->count() > 0 && o->precision != saved_precision)
        return fail("train", "--precision cannot change on resume (the run is " + saved_precision + ")");
      o->precision = saved_precision;
      t = saved;
      Result<std::string> cj = read_checkpoint_config(checkpoint);
      if (!cj.is_ok()) return fail("train", cj.message());
      config_json = *cj;
      int saved_threads = int(st->options.value("threads", 0));
      if (saved_threads != num_threads())
        std::printf("note: the run was saved with %d threads, now %d: bit-identity with an uninterrupted run "
                    "is only guaranteed for the same thread count\n",
                    saved_threads, num_threads());
    } else {
      Result<std::string> cj = read_text_file(o->config);
      if (!cj.is_ok()) return fail("train", cj.message());
      config_json = *cj;
      if (t.out_dir.empty()) return fail("train", "--out DIR is required");
      if (fs::exists(fs::path(t.out_dir) / "latest"))
        return fail("train", t.out_dir + " already holds a training run; continue it with --resume " + t.out_dir);
      Result<OptimizerKind> kind = parse_optimizer_kind(o->optimizer);
      if (!kind.is_ok()) return fail("train", kind.message());
      t.optimizer.kind = *kind;
      // The FP8 recipe keeps AdamW moments in BF16; the BF16 baseline does the same so that the
      // two runs differ only in the GEMMs.
      t.optimizer.moments = o->bf16_moments || o->precision != "fp32" ? MomentDType::BF16 : MomentDType::F32;
      t.schedule.min_lr = o->min_lr;
      t.schedule.final_lr = o->final_lr >= 0 ? o->final_lr : o->min_lr;
      t.schedule.warmup_steps = o->warmup >= 0 ? o->warmup : std::max<int64_t>(1, t.steps / 100);
    }
    if (o->data.empty()) return fail("train", "--data DIR is required");
    Result<ModelConfig> cfg = parse_model_config(config_json, resume->count() ? checkpoint + "/config.json" : o->config);
    if (!cfg.is_ok()) return fail("train", cfg.message());
    if (t.steps < 1 || t.batch < 1 || t.seq_len < 2 || t.grad_accum < 1)
      return fail("train", "--steps, --batch, --grad-accum must be >= 1 and --seq-len >= 2");
    t.schedule.total_steps = t.steps;
    if (Status s = validate_schedule(t.schedule); !s.is_ok()) return fail("train", s.message());
    if (!cfg->has_gate_bias() && t.bias_update_speed != 0) {
      std::printf("note: this router has no correction bias (topk_method != noaux_tc): bias updates are off\n");
      t.bias_update_speed = 0;
    }

    Result<TokenDataset> data = TokenDataset::open(o->data);
    if (!data.is_ok()) return fail("train", data.message());
    if (Status s = data->check_vocab(cfg->vocab_size); !s.is_ok()) return fail("train", s.message());
    if (data->train().windows(t.seq_len) < 1)
      return fail("train", fmt::format("{}: the training split has no window of {} tokens", o->data, t.seq_len + 1));

    Result<Precision> prec = parse_precision(o->precision);
    if (!prec.is_ok()) return fail("train", prec.message());
    TrainModelOptions mo;
    mo.precision = *prec;
    mo.batch = t.batch;
    mo.seq_len = t.seq_len;
    mo.mtp_weight = t.mtp_weight;
    mo.balance_alpha = t.balance_alpha;
    mo.recompute = o->recompute;
    TrainModelAdapter model(*cfg, mo);
    model.model().init(t.seed, float(o->init_std));
    Trainer trainer(model, *data, t, config_json);
    if (!checkpoint.empty()) {
      if (Status s = trainer.resume(checkpoint); !s.is_ok()) return fail("train", s.message());
      std::printf("resumed from %s at step %lld\n", checkpoint.c_str(), (long long)trainer.step());
    }

    const ParamSet& ps = model.params();
    Trainer::Memory mem = trainer.memory();
    std::printf("model: %s, %lld layers (+%lld MTP), dim %lld, %lld routed experts (top-%lld)\n",
                cfg->model_type.c_str(), (long long)cfg->n_layers, (long long)cfg->n_mtp_layers, (long long)cfg->dim,
                (long long)cfg->n_routed_experts, (long long)cfg->n_activated_experts);
    std::printf("parameters: %lld total in %zu tensors, %lld active per token\n", (long long)ps.numel(),
                ps.tensors().size(), (long long)model.active_params());
    std::printf("memory: parameters %s, gradients %s, optimizer %s, activations %s, total %s\n",
                gib(mem.params).c_str(), gib(mem.grads).c_str(), gib(mem.optimizer).c_str(),
                gib(mem.activations).c_str(), gib(mem.params + mem.grads + mem.optimizer + mem.activations).c_str());
    const char* cache = o->precision == "fp8"    ? "E4M3 1x128 tiles + f32 scales, E5M6 for the o_proj input"
                        : o->precision == "bf16" ? "BF16"
                                                 : "f32";
    std::printf("precision %s: optimizer moments %s; linear-layer inputs cached for backward in %s: %s of the "
                "activations (MoE router input f32)%s\n",
                o->precision.c_str(), t.optimizer.moments == MomentDType::BF16 ? "bf16" : "f32", cache,
                gib(mem.linear_inputs).c_str(),
                o->precision == "fp32" ? "" : "; MoE SwiGLU inputs cached in the same format");
    std::printf("data: %lld train tokens (%lld windows of %lld), %lld validation tokens\n",
                (long long)data->train().tokens(), (long long)data->train().windows(t.seq_len),
                (long long)t.seq_len + 1, (long long)data->val().tokens());
    std::printf("step: %lld x %lld x %lld tokens, %s, lr %.3g -> %.3g, warm-up %lld, %d threads\n",
                (long long)t.grad_accum, (long long)t.batch, (long long)t.seq_len,
                optimizer_kind_name(t.optimizer.kind).c_str(), t.schedule.peak_lr, t.schedule.min_lr,
                (long long)t.schedule.warmup_steps, num_threads());
    std::printf("MFU counts %.3g FLOP/token: %s; peak %.0f GFLOP/s\n", model.flops_per_token(t.seq_len),
                model.flops_note().c_str(), t.peak_gflops);
    std::fflush(stdout);
    // Saved with each checkpoint next to the trainer options, for --resume.
    trainer.set_extra_options(
        {{"data", fs::absolute(o->data).string()}, {"threads", num_threads()}, {"precision", o->precision}});
    if (Status s = trainer.run(); !s.is_ok()) return fail("train", s.message());
    return 0;
  };
}

DSV3_COMMAND("train", "train a model on prepared data (resumable checkpoints)", setup_train);

}  // namespace
}  // namespace dsv3::cli
