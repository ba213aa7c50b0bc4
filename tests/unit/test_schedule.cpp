#include <gtest/gtest.h>

#include "train/schedule.hpp"

namespace quopt {
namespace {

TEST(Schedule, WsdWarmupStableDecay) {
  ScheduleConfig s;  // 5% warmup, 20% decay to 0 (the paper's)
  const std::int64_t total = 100;
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 1, total), 1.0 / 5.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 5, total), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 50, total), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 80, total), 1.0);  // decay starts after step 80
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 90, total), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 100, total), 0.0);
  s.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 100, total), 0.1);
  EXPECT_NEAR(lr_multiplier(s, 90, total), 0.55, 1e-15);
}

TEST(Schedule, CosineLinearConstant) {
  ScheduleConfig s;
  s.warmup_fraction = 0.1;
  const std::int64_t total = 110;  // 11 warmup steps, then 99 steps of decay
  s.kind = ScheduleKind::Cosine;
  EXPECT_NEAR(lr_multiplier(s, 11, total), 1.0, 1e-12);
  EXPECT_NEAR(lr_multiplier(s, 110, total), 0.0, 1e-12);
  EXPECT_NEAR(lr_multiplier(s, 11 + 99 / 2.0, total), 0.5, 0.02);
  s.kind = ScheduleKind::Linear;
  EXPECT_NEAR(lr_multiplier(s, 110, total), 0.0, 1e-12);
  EXPECT_GT(lr_multiplier(s, 50, total), lr_multiplier(s, 60, total));
  s.kind = ScheduleKind::Constant;
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 100, total), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(s, 1, total), 1.0 / 11.0);
}

}  // namespace
}  // namespace quopt
