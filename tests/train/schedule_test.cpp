// The learning-rate schedule at its phase boundaries, by hand.
#include "train/schedule.h"

#include <gtest/gtest.h>

namespace dsv3 {
namespace {

ScheduleOptions sched() {
  ScheduleOptions s;
  s.peak_lr = 1e-3;
  s.min_lr = 1e-4;
  s.final_lr = 1e-5;
  s.total_steps = 1000;
  s.warmup_steps = 10;
  s.decay_start = 0.5;
  s.decay_end = 0.9;
  s.final_start = 0.95;
  return s;
}

TEST(Schedule, Boundaries) {
  ScheduleOptions s = sched();
  ASSERT_TRUE(validate_schedule(s).is_ok());
  EXPECT_DOUBLE_EQ(learning_rate(s, 0), 1e-4);  // peak·1/10
  EXPECT_DOUBLE_EQ(learning_rate(s, 4), 5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(s, 9), 1e-3);  // warm-up ends at the peak
  EXPECT_DOUBLE_EQ(learning_rate(s, 10), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(s, 499), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(s, 500), 1e-3);  // cos(0) = 1
  // Halfway through the cosine (step 700 of 500..900): (peak + min)/2.
  EXPECT_NEAR(learning_rate(s, 700), 5.5e-4, 1e-15);
  // A quarter in: min + (peak − min)·(1 + cos(π/4))/2.
  EXPECT_NEAR(learning_rate(s, 600), 1e-4 + 9e-4 * (1 + 0.70710678118654752) / 2, 1e-15);
  EXPECT_GT(learning_rate(s, 899), 1e-4);
  EXPECT_LT(learning_rate(s, 899), 1.001e-4);
  EXPECT_DOUBLE_EQ(learning_rate(s, 900), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(s, 949), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(s, 950), 1e-5);
  EXPECT_DOUBLE_EQ(learning_rate(s, 999), 1e-5);
  EXPECT_DOUBLE_EQ(learning_rate(s, 5000), 1e-5);
}

TEST(Schedule, ReportDefaultsScaled) {
  // The report's shape on 14800 steps: the fractions land on the token boundaries.
  ScheduleOptions s;
  s.total_steps = 14800;
  s.warmup_steps = 2000;
  SchedulePhases p = schedule_phases(s);
  EXPECT_EQ(p.decay_start, 10000);
  EXPECT_EQ(p.decay_end, 14300);
  EXPECT_EQ(p.final_start, 14633);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1999), 2.2e-4);
  EXPECT_DOUBLE_EQ(learning_rate(s, 14300), 2.2e-5);
  EXPECT_DOUBLE_EQ(learning_rate(s, 14799), 7.3e-6);
}

TEST(Schedule, WarmupLongerThanConstantPhase) {
  ScheduleOptions s = sched();
  s.warmup_steps = 600;  // past decay_start: the cosine starts after warm-up
  EXPECT_EQ(schedule_phases(s).decay_start, 600);
  EXPECT_DOUBLE_EQ(learning_rate(s, 599), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(s, 600), 1e-3);
}

TEST(Schedule, Validation) {
  ScheduleOptions s = sched();
  s.decay_end = 0.4;
  EXPECT_FALSE(validate_schedule(s).is_ok());
  s = sched();
  s.warmup_steps = 2000;
  EXPECT_FALSE(validate_schedule(s).is_ok());
}

}  // namespace
}  // namespace dsv3
