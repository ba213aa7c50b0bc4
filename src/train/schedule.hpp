#pragma once
// Learning-rate schedules as a multiplier of the peak lr at a 1-based step.
#include <cstdint>

#include "io/run_config.hpp"

namespace quopt {

// Warmup-stable-decay (the paper's: 5% linear warmup, then constant, then 20% linear decay to
// min_lr_ratio), cosine and linear (after the same warmup), or constant (after warmup).
double lr_multiplier(const ScheduleConfig& s, std::int64_t step, std::int64_t total_steps);

}  // namespace quopt
