// Training checkpoints: everything needed to continue a run bit for bit, written atomically.
//
// A run directory holds step-NNNNNN/ checkpoints and a `latest` file naming the newest one.
// A checkpoint directory holds
//   model.safetensors      parameters (HF names, F32) and router correction biases (F32)
//   optimizer.safetensors  AdamW moments "<name>.exp_avg" / "<name>.exp_avg_sq" (F32 or BF16);
//                          absent for SGD
//   config.json            the model configuration
//   state.json             {"format": "dsv3-train-checkpoint", "version": 1, "step", "tokens_seen",
//                          "optimizer_steps", "loader": {"epoch", "position"}, "options": {...},
//                          "files": {name: {"bytes", "crc32"}}}; written last
// Save: every file goes into RUN/step-NNNNNN.tmp-XXXXXX, each fsync'ed, then the directory is
// fsync'ed and renamed to step-NNNNNN, the run directory fsync'ed, and `latest` replaced
// atomically (write, fsync, rename). A SIGKILL at any point leaves the previous checkpoint
// intact and `latest` naming a complete one. Old checkpoints beyond `keep` are then removed.
// Load: state.json, every listed file's size and CRC-32, and every tensor's name, dtype and
// shape are checked before anything is overwritten; errors say which file and why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/json.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/params.h"

namespace dsv3 {

struct TrainState {
  int64_t step = 0;         // optimizer steps completed
  int64_t tokens_seen = 0;  // training tokens consumed
  int64_t optimizer_steps = 0;  // t of AdamW's bias correction (saved from the Optimizer)
  LoaderState loader;
  Json options;             // the trainer options (opaque here)
};

// What a checkpoint saves and restores (pointers into the live training objects).
struct CheckpointTarget {
  ParamSet* params = nullptr;
  Optimizer* optimizer = nullptr;
  std::vector<std::vector<float>>* router_biases = nullptr;
  std::vector<std::string> router_bias_names;
  std::string config_json;  // saved as config.json
};

// Name of the checkpoint directory for a step: "step-000123".
std::string checkpoint_dir_name(int64_t step);

// Saves into RUN_DIR (created if needed) and returns the checkpoint's path; keeps the newest
// `keep` checkpoints (keep <= 0: all).
Result<std::string> save_checkpoint(const std::string& run_dir, const CheckpointTarget& target,
                                    const TrainState& state, int keep);

// Reads and validates state.json and the file checksums of a checkpoint directory.
Result<TrainState> read_checkpoint_state(const std::string& checkpoint_dir);

// Validates the checkpoint fully against `target` and then loads it into it.
Result<TrainState> load_checkpoint(const std::string& checkpoint_dir, const CheckpointTarget& target);

// The checkpoint to resume from: `path` is a checkpoint directory, or a run directory whose
// `latest` (else newest valid step-*) is used. Invalid candidates are skipped; each skip is
// described in `notes` (for the user). Errors when no valid checkpoint exists.
Result<std::string> find_resume_checkpoint(const std::string& path, std::vector<std::string>* notes);

// Reads only the config.json text of a checkpoint.
Result<std::string> read_checkpoint_config(const std::string& checkpoint_dir);

}  // namespace dsv3
