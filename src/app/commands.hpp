#pragma once
// The subcommands of `quopt`. Each returns the process exit code; quopt::Error propagates to main.
#include <cstdint>
#include <string>
#include <vector>

namespace quopt::app {

struct CommonArgs {
  std::string config;              // CONFIG.toml
  std::vector<std::string> sets;   // --set key=value
  std::string out;                 // --out DIR (overrides output.dir)
};

int cmd_tokenize(const CommonArgs& a);
// Exit status of a training run stopped by SIGTERM/SIGUSR1 after writing its checkpoint
// (EX_TEMPFAIL from sysexits.h: "try again later", i.e. resume).
inline constexpr int kExitInterrupted = 75;
int cmd_train(const CommonArgs& a, const std::string& resume);
int cmd_info(const CommonArgs& a);
struct BenchArgs {
  std::int64_t steps = 5;
  std::int64_t warmup = 1;
};
int cmd_bench(const CommonArgs& a, const BenchArgs& b);

}  // namespace quopt::app
