// The training loop (`dsv3 train`): for each step, grad_accum micro-batches of forward +
// backward, gradient averaging, global-norm clipping, the scheduled learning rate, the
// optimizer update and the aux-loss-free router-bias update; progress lines, a JSONL metrics
// log, periodic validation and atomic checkpoints (train/checkpoint.h).
//
// Determinism: for a given seed and thread count every step is a pure function of the
// checkpointed state (parameters, moments, biases, step, loader position), so a run resumed
// from a checkpoint reproduces the uninterrupted run's losses bit for bit.
//
// metrics.jsonl (in out_dir), one object per line:
//   {"type": "train", "step", "loss", "main", "mtp", "balance", "lr", "grad_norm", "tokens",
//    "tokens_per_s", "mfu", "max_vio", "max_vio_max", "min_rel_load", "max_rel_load",
//    "zero_experts", "bias_min", "bias_max", "elapsed_s"}
//   {"type": "eval", "step", "val_loss", "val_main", "val_mtp", "val_balance", "val_tokens"}
// On resume, records after the checkpoint's step are dropped so the log reads as one run.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/json.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/trainable.h"

namespace dsv3 {

struct TrainerOptions {
  int64_t steps = 100;
  int64_t batch = 8;
  int64_t seq_len = 256;
  int64_t grad_accum = 1;
  uint64_t seed = 0;
  int64_t eval_every = 0;   // 0: only at the end
  int64_t eval_batches = 4;
  int64_t save_every = 0;   // 0: only at the end
  int keep = 3;
  double clip = 1.0;        // global gradient norm (<= 0: off)
  double bias_update_speed = 0.001;  // γ
  double mtp_weight = 0.3;           // λ (passed to the model; recorded here for resume)
  double balance_alpha = 1e-4;       // α (same)
  OptimizerOptions optimizer;
  ScheduleOptions schedule;          // total_steps is set from `steps`
  std::string out_dir;
  double peak_gflops = 178;
  bool print = true;                 // progress lines to stdout
};

Json trainer_options_to_json(const TrainerOptions& o);
// Fills `o` from JSON written by trainer_options_to_json (keys absent keep their values).
Status trainer_options_from_json(const Json& j, TrainerOptions& o);

struct StepRecord {
  int64_t step = 0;  // 1-based: the number of updates done after this step
  LossParts loss;
  double lr = 0, grad_norm = 0, max_vio = 0;
};

class Trainer {
 public:
  Trainer(Trainable& model, const TokenDataset& data, const TrainerOptions& options, std::string config_json);
  ~Trainer();

  // Loads a checkpoint directory (validated) and continues from its step.
  Status resume(const std::string& checkpoint_dir);
  // Extra keys saved in state.json "options" (e.g. the data directory), ignored by the loop.
  void set_extra_options(const Json& extra) { extra_options_ = extra; }
  // Runs until options.steps; returns the first error (I/O, non-finite loss).
  Status run();

  // The memory budget printed at start, in bytes.
  struct Memory {
    int64_t params = 0, grads = 0, optimizer = 0, activations = 0;
    int64_t linear_inputs = 0;  // of activations: linear-layer inputs kept for backward
  };
  Memory memory() const;
  int64_t step() const { return step_; }
  const std::vector<StepRecord>& history() const { return history_; }
  // Validation loss over the fixed validation set (main-model loss parts averaged).
  LossParts evaluate();

 private:
  Result<StepRecord> train_step();
  Status save();
  void log_json(const Json& j);
  CheckpointTarget target();
  TrainState state() const;

  Trainable& model_;
  const TokenDataset& data_;
  TrainerOptions opt_;
  std::string config_json_;
  Optimizer optimizer_;
  BatchSampler sampler_;
  int64_t step_ = 0;
  int64_t tokens_seen_ = 0;
  std::vector<int32_t> tokens_;
  std::vector<StepRecord> history_;
  Json extra_options_;
  Json last_json_;  // the metrics record of the step in progress
  FILE* metrics_ = nullptr;
};

}  // namespace dsv3
