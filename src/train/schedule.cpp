#include "train/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace quopt {

double lr_multiplier(const ScheduleConfig& s, std::int64_t step, std::int64_t total_steps) {
  const double total = static_cast<double>(total_steps);
  const auto warmup = static_cast<std::int64_t>(std::llround(s.warmup_fraction * total));
  const double floor = s.min_lr_ratio;
  if (step <= warmup && warmup > 0) return static_cast<double>(step) / static_cast<double>(warmup);
  const double after = static_cast<double>(step - warmup);  // steps since warmup ended
  const double span = std::max(1.0, total - static_cast<double>(warmup));
  switch (s.kind) {
    case ScheduleKind::Constant:
      return 1.0;
    case ScheduleKind::Linear:
      return floor + (1.0 - floor) * std::max(0.0, 1.0 - after / span);
    case ScheduleKind::Cosine:
      return floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(1.0, after / span)));
    case ScheduleKind::WSD: {
      const auto decay = static_cast<std::int64_t>(std::llround(s.decay_fraction * total));
      const std::int64_t decay_start = total_steps - decay;  // last `decay` steps decay linearly
      if (decay <= 0 || step <= decay_start) return 1.0;
      const double frac = static_cast<double>(total_steps - step) / static_cast<double>(decay);
      return floor + (1.0 - floor) * frac;
    }
  }
  return 1.0;
}

}  // namespace quopt
