// The learning-rate schedule of the DeepSeek-V3 report (spec model §7.1), scaled to a run by
// fractions of its total steps:
//
//   lr │      ┌───────────────┐
//      │     /                 \            cosine from `peak` to `min_lr`
//      │    /                   \______     constant `min_lr` tail
//      │   /                           \__  constant `final_lr` for the last part
//      └──┴───────────────┴─────┴─────┴──┴─ step
//      0  warmup     decay_start  decay_end  final_start  total
//
// Report: warm-up over 2K steps to 2.2e-4, constant until 10T of 14.8T tokens, cosine to
// 2.2e-5 over 4.3T tokens, 2.2e-5 for 333B tokens and 7.3e-6 for the final 167B; the default
// fractions below are those token ratios. Step s (0-based) of warm-up uses peak·(s+1)/warmup,
// so the first update already has a non-zero rate and step warmup-1 reaches the peak.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace dsv3 {

struct ScheduleOptions {
  double peak_lr = 2.2e-4;
  double min_lr = 2.2e-5;      // end of the cosine decay and the first tail
  double final_lr = 7.3e-6;    // last tail (set equal to min_lr for a single tail)
  int64_t total_steps = 1;
  int64_t warmup_steps = 0;
  double decay_start = 10.0 / 14.8;    // fraction of total_steps
  double decay_end = 14.3 / 14.8;
  double final_start = 14.633 / 14.8;  // 14.8T − 167B
};

Status validate_schedule(const ScheduleOptions& s);

// Learning rate of step `step` (0-based; steps past the end keep the final rate).
double learning_rate(const ScheduleOptions& s, int64_t step);

// The first step of each phase (derived from the fractions; exposed for tests and printing).
struct SchedulePhases {
  int64_t decay_start = 0, decay_end = 0, final_start = 0;
};
SchedulePhases schedule_phases(const ScheduleOptions& s);

}  // namespace dsv3
