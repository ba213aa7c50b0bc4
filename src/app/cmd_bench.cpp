#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "core/error.hpp"

namespace quopt::app {

int cmd_bench(const CommonArgs& a, const BenchArgs& b) {
  const LoadedConfig lc = load_config(a);
  (void)b;
  fail("bench: not built yet");
}

}  // namespace quopt::app
