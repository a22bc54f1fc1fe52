#include "train/trainer.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "core/log.h"
#include "core/timer.h"
#include "train/balance.h"

namespace dsv3 {

namespace fs = std::filesystem;

namespace {

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  int64_t t = int64_t(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

LossParts& operator+=(LossParts& a, const LossParts& b) {
  a.total += b.total;
  a.main += b.main;
  a.mtp += b.mtp;
  a.balance += b.balance;
  return a;
}

LossParts scaled(LossParts a, double f) {
  a.total *= f;
  a.main *= f;
  a.mtp *= f;
  a.balance *= f;
  return a;
}

// Keeps the records of a metrics log up to `step` (a resumed run continues the log).
void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.value("step", int64_t(0)) <= step) kept += line + "\n";
  }
  in.close();
  std::ofstream(path, std::ios::trunc) << kept;
}

}  // namespace

Json trainer_options_to_json(const TrainerOptions& o) {
  Json j;
  j["steps"] = o.steps;
  j["batch"] = o.batch;
  j["seq_len"] = o.seq_len;
  j["grad_accum"] = o.grad_accum;
  j["seed"] = o.seed;
  j["eval_every"] = o.eval_every;
  j["eval_batches"] = o.eval_batches;
  j["save_every"] = o.save_every;
  j["keep"] = o.keep;
  j["clip"] = o.clip;
  j["bias_update_speed"] = o.bias_update_speed;
  j["mtp_weight"] = o.mtp_weight;
  j["balance_alpha"] = o.balance_alpha;
  j["optimizer"] = optimizer_kind_name(o.optimizer.kind);
  j["beta1"] = o.optimizer.beta1;
  j["beta2"] = o.optimizer.beta2;
  j["eps"] = o.optimizer.eps;
  j["weight_decay"] = o.optimizer.weight_decay;
  j["bf16_moments"] = o.optimizer.moments == MomentDType::BF16;
  j["lr"] = o.schedule.peak_lr;
  j["min_lr"] = o.schedule.min_lr;
  j["final_lr"] = o.schedule.final_lr;
  j["warmup"] = o.schedule.warmup_steps;
  j["decay_start"] = o.schedule.decay_start;
  j["decay_end"] = o.schedule.decay_end;
  j["final_start"] = o.schedule.final_start;
  j["peak_gflops"] = o.peak_gflops;
  return j;
}

Status trainer_options_from_json(const Json& json, TrainerOptions& o) {
  if (!json.is_object()) return Status::error("trainer options: expected a JSON object");
  JsonObject j(json, "state.json", "options");
  auto get_int = [&](const char* key, int64_t& out) -> Status {
    Result<int64_t> v = j.get_int(key, out);
    DSV3_TRY(v);
    out = *v;
    return Status::ok();
  };
  auto get_num = [&](const char* key, double& out) -> Status {
    Result<double> v = j.get_number(key, out);
    DSV3_TRY(v);
    out = *v;
    return Status::ok();
  };
  int64_t seed = int64_t(o.seed), keep = o.keep;
  DSV3_TRY(get_int("steps", o.steps));
  DSV3_TRY(get_int("batch", o.batch));
  DSV3_TRY(get_int("seq_len", o.seq_len));
  DSV3_TRY(get_int("grad_accum", o.grad_accum));
  DSV3_TRY(get_int("seed", seed));
  DSV3_TRY(get_int("eval_every", o.eval_every));
  DSV3_TRY(get_int("eval_batches", o.eval_batches));
  DSV3_TRY(get_int("save_every", o.save_every));
  DSV3_TRY(get_int("keep", keep));
  DSV3_TRY(get_int("warmup", o.schedule.warmup_steps));
  o.seed = uint64_t(seed);
  o.keep = int(keep);
  DSV3_TRY(get_num("clip", o.clip));
  DSV3_TRY(get_num("bias_update_speed", o.bias_update_speed));
  DSV3_TRY(get_num("mtp_weight", o.mtp_weight));
  DSV3_TRY(get_num("balance_alpha", o.balance_alpha));
  DSV3_TRY(get_num("beta1", o.optimizer.beta1));
  DSV3_TRY(get_num("beta2", o.optimizer.beta2));
  DSV3_TRY(get_num("eps", o.optimizer.eps));
  DSV3_TRY(get_num("weight_decay", o.optimizer.weight_decay));
  DSV3_TRY(get_num("lr", o.schedule.peak_lr));
  DSV3_TRY(get_num("min_lr", o.schedule.min_lr));
  DSV3_TRY(get_num("final_lr", o.schedule.final_lr));
  DSV3_TRY(get_num("decay_start", o.schedule.decay_start));
  DSV3_TRY(get_num("decay_end", o.schedule.decay_end));
  DSV3_TRY(get_num("final_start", o.schedule.final_start));
  DSV3_TRY(get_num("peak_gflops", o.peak_gflops));
  Result<std::string> kind = j.get_string("optimizer", optimizer_kind_name(o.optimizer.kind));
  DSV3_TRY(kind);
  Result<OptimizerKind> k = parse_optimizer_kind(*kind);
  DSV3_TRY(k);
  o.optimizer.kind = *k;
  Result<bool> bf16 = j.get_bool("bf16_moments", o.optimizer.moments == MomentDType::BF16);
  DSV3_TRY(bf16);
  o.optimizer.moments = *bf16 ? MomentDType::BF16 : MomentDType::F32;
  return Status::ok();
}

Trainer::Trainer(Trainable& model, const TokenDataset& data, const TrainerOptions& options, std::string config_json)
    : model_(model),
      data_(data),
      opt_(options),
      config_json_(std::move(config_json)),
      optimizer_(model.params(), options.optimizer),
      sampler_(data.train(), options.seq_len, options.seed) {
  opt_.schedule.total_steps = opt_.steps;
  tokens_.resize(size_t(opt_.batch * (opt_.seq_len + 1)));
}

Trainer::~Trainer() {
  if (metrics_ != nullptr) std::fclose(metrics_);
}

Trainer::Memory Trainer::memory() const {
  Memory m;
  m.params = model_.params().numel() * 4;
  m.grads = model_.params().numel() * 4;
  m.optimizer = optimizer_.state_bytes();
  m.activations = model_.activation_bytes(opt_.batch, opt_.seq_len);
  m.linear_inputs = model_.linear_input_bytes(opt_.batch, opt_.seq_len);
  return m;
}

CheckpointTarget Trainer::target() {
  CheckpointTarget t;
  t.params = &model_.params();
  t.optimizer = &optimizer_;
  t.router_biases = &model_.router_biases();
  t.router_bias_names = model_.router_bias_names();
  t.config_json = config_json_;
  return t;
}

TrainState Trainer::state() const {
  TrainState s;
  s.step = step_;
  s.tokens_seen = tokens_seen_;
  s.loader = sampler_.state();
  s.options = trainer_options_to_json(opt_);
  if (extra_options_.is_object())
    for (auto it = extra_options_.begin(); it != extra_options_.end(); ++it) s.options[it.key()] = it.value();
  return s;
}

Status Trainer::resume(const std::string& checkpoint_dir) {
  Result<TrainState> st = load_checkpoint(checkpoint_dir, target());
  DSV3_TRY(st);
  step_ = st->step;
  tokens_seen_ = st->tokens_seen;
  sampler_.set_state(st->loader);
  if (!opt_.out_dir.empty()) truncate_metrics((fs::path(opt_.out_dir) / "metrics.jsonl").string(), step_);
  return Status::ok();
}

void Trainer::log_json(const Json& j) {
  if (metrics_ == nullptr) return;
  std::string line = j.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), metrics_);
  std::fflush(metrics_);
}

LossParts Trainer::evaluate() {
  LossParts sum;
  const TokenSplit& val = data_.val();
  if (opt_.eval_batches <= 0 || val.windows(opt_.seq_len) == 0) return sum;
  for (int64_t i = 0; i < opt_.eval_batches; ++i) {
    validation_batch(val, opt_.seq_len, opt_.batch, i, opt_.eval_batches, tokens_.data());
    sum += model_.evaluate({tokens_.data(), opt_.batch, opt_.seq_len});
  }
  return scaled(sum, 1.0 / double(opt_.eval_batches));
}

Result<StepRecord> Trainer::train_step() {
  ParamSet& ps = model_.params();
  ps.zero_grad();
  std::vector<std::vector<int64_t>> counts;
  LossParts loss;
  for (int64_t a = 0; a < opt_.grad_accum; ++a) {
    sampler_.next_batch(opt_.batch, tokens_.data());
    loss += model_.forward_backward({tokens_.data(), opt_.batch, opt_.seq_len});
    accumulate_counts(counts, model_.expert_counts());
  }
  if (opt_.grad_accum > 1) {
    scale_grads(ps, float(1.0 / double(opt_.grad_accum)));
    loss = scaled(loss, 1.0 / double(opt_.grad_accum));
  }
  StepRecord r;
  r.step = step_ + 1;
  r.loss = loss;
  if (!std::isfinite(loss.total)) return Status::errorf("step {}: the loss is not finite ({})", r.step, loss.total);
  r.grad_norm = grad_norm(ps);
  if (!std::isfinite(r.grad_norm)) return Status::errorf("step {}: the gradient norm is not finite", r.step);
  clip_grad_norm(ps, r.grad_norm, opt_.clip);
  r.lr = learning_rate(opt_.schedule, step_);
  optimizer_.step(r.lr);
  auto& biases = model_.router_biases();
  for (size_t l = 0; l < counts.size() && l < biases.size(); ++l)
    update_router_bias(biases[l], counts[l], float(opt_.bias_update_speed));
  LoadSummary load = summarize_load(counts, biases);
  r.max_vio = load.max_vio_mean;
  ++step_;
  tokens_seen_ += opt_.grad_accum * opt_.batch * opt_.seq_len;

  Json j;
  j["type"] = "train";
  j["step"] = r.step;
  j["loss"] = loss.total;
  j["main"] = loss.main;
  j["mtp"] = loss.mtp;
  j["balance"] = loss.balance;
  j["lr"] = r.lr;
  j["grad_norm"] = r.grad_norm;
  j["tokens"] = tokens_seen_;
  j["max_vio"] = load.max_vio_mean;
  j["max_vio_max"] = load.max_vio_max;
  j["min_rel_load"] = load.min_rel;
  j["max_rel_load"] = load.max_rel;
  j["zero_experts"] = load.zero_experts;
  j["bias_min"] = load.bias_min;
  j["bias_max"] = load.bias_max;
  last_json_ = std::move(j);
  return r;
}

Status Trainer::save() {
  if (opt_.out_dir.empty()) return Status::ok();
  Result<std::string> path = save_checkpoint(opt_.out_dir, target(), state(), opt_.keep);
  DSV3_TRY(path);
  if (opt_.print) std::printf("saved %s\n", path->c_str());
  return Status::ok();
}

Status Trainer::run() {
  if (!opt_.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(opt_.out_dir, ec);
    const std::string path = (fs::path(opt_.out_dir) / "metrics.jsonl").string();
    metrics_ = std::fopen(path.c_str(), step_ == 0 ? "w" : "a");
    if (metrics_ == nullptr) return Status::errorf("{}: cannot open for writing", path);
  }
  const int64_t tokens_per_step = opt_.grad_accum * opt_.batch * opt_.seq_len;
  const double flops_per_token = model_.flops_per_token(opt_.seq_len);
  const int64_t first = step_;
  const bool has_val = data_.val().windows(opt_.seq_len) > 0;
  Timer total;
  double train_seconds = 0;
  while (step_ < opt_.steps) {
    Timer t;
    Result<StepRecord> r = train_step();
    DSV3_TRY(r);
    const double dt = t.seconds();
    train_seconds += dt;
    const double tps = double(tokens_per_step) / std::max(dt, 1e-9);
    const double mfu = flops_per_token * tps / (opt_.peak_gflops * 1e9);
    const double eta = train_seconds / double(step_ - first) * double(opt_.steps - step_);
    last_json_["tokens_per_s"] = tps;
    last_json_["mfu"] = mfu;
    last_json_["elapsed_s"] = total.seconds();
    log_json(last_json_);
    history_.push_back(*r);
    if (opt_.print) {
      std::printf("step %lld/%lld | loss %.4f (main %.4f mtp %.4f bal %.2e) | lr %.3e | gnorm %.3f | "
                  "%.0f tok/s | MFU %.2f%% | MaxVio %.3f | ETA %s\n",
                  (long long)step_, (long long)opt_.steps, r->loss.total, r->loss.main, r->loss.mtp,
                  r->loss.balance, r->lr, r->grad_norm, tps, 100 * mfu, r->max_vio,
                  format_duration(eta).c_str());
      std::fflush(stdout);
    }
    const bool last = step_ == opt_.steps;
    if (has_val && ((opt_.eval_every > 0 && step_ % opt_.eval_every == 0) || last)) {
      LossParts v = evaluate();
      Json j;
      j["type"] = "eval";
      j["step"] = step_;
      j["val_loss"] = v.total;
      j["val_main"] = v.main;
      j["val_mtp"] = v.mtp;
      j["val_balance"] = v.balance;
      j["val_tokens"] = opt_.eval_batches * opt_.batch * opt_.seq_len;
      log_json(j);
      if (opt_.print) {
        std::printf("eval step %lld | val loss %.4f (main %.4f mtp %.4f)\n", (long long)step_, v.total, v.main,
                    v.mtp);
        std::fflush(stdout);
      }
    }
    if ((opt_.save_every > 0 && step_ % opt_.save_every == 0) || last) DSV3_TRY(save());
  }
  return Status::ok();
}

}  // namespace dsv3
