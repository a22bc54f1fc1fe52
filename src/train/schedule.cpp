#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dsv3 {

Status validate_schedule(const ScheduleOptions& s) {
  if (s.total_steps < 1) return Status::errorf("total steps must be >= 1, got {}", s.total_steps);
  if (s.warmup_steps < 0 || s.warmup_steps > s.total_steps)
    return Status::errorf("warm-up steps must be in [0, {}], got {}", s.total_steps, s.warmup_steps);
  if (!(s.peak_lr >= 0) || !(s.min_lr >= 0) || !(s.final_lr >= 0))
    return Status::error("learning rates must be >= 0");
  if (!(0 <= s.decay_start && s.decay_start <= s.decay_end && s.decay_end <= s.final_start &&
        s.final_start <= 1))
    return Status::errorf("schedule fractions must satisfy 0 <= decay_start ({}) <= decay_end ({}) <= "
                          "final_start ({}) <= 1",
                          s.decay_start, s.decay_end, s.final_start);
  return Status::ok();
}

SchedulePhases schedule_phases(const ScheduleOptions& s) {
  auto at = [&](double f) { return int64_t(std::llround(f * double(s.total_steps))); };
  SchedulePhases p;
  // Decay never starts inside warm-up.
  p.decay_start = std::max(at(s.decay_start), s.warmup_steps);
  p.decay_end = std::max(at(s.decay_end), p.decay_start);
  p.final_start = std::max(at(s.final_start), p.decay_end);
  return p;
}

double learning_rate(const ScheduleOptions& s, int64_t step) {
  if (step < s.warmup_steps) return s.peak_lr * double(step + 1) / double(s.warmup_steps);
  SchedulePhases p = schedule_phases(s);
  if (step < p.decay_start) return s.peak_lr;
  if (step < p.decay_end) {
    double progress = double(step - p.decay_start) / double(p.decay_end - p.decay_start);
    return s.min_lr + (s.peak_lr - s.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  if (step < p.final_start) return s.min_lr;
  return s.final_lr;
}

}  // namespace dsv3
