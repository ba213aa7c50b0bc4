#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "core/log.hpp"
#include "train/bench.hpp"

namespace quopt::app {

int cmd_bench(const CommonArgs& a, const BenchArgs& b) {
  const LoadedConfig lc = load_config(a);
  const BenchResult r = bench_training(lc.run, b.warmup, b.steps);
  log_info(describe(r, lc.run));
  return 0;
}

}  // namespace quopt::app
