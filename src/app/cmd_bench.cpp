#include <mpi.h>

#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "app/idle_threads.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "kernels/host/threads.hpp"
#include "train/bench.hpp"

namespace quopt::app {

int cmd_bench(const CommonArgs& a, const BenchArgs& b) {
  log_info(cat("host loops: ", kernels::host::host_loops_description(), "; OpenBLAS: ",
               kernels::host::blas_threads(), " thread(s); ", idle_thread_settings()));
  if (b.optimizers.empty()) {
    const LoadedConfig lc = load_config(a);
    const BenchResult r = bench_training(lc.run, b.warmup, b.steps, MPI_COMM_WORLD);
    log_info(describe(r, lc.run));
    if (b.gemm_shapes) log_info(describe_gemm_shapes(r));
    return 0;
  }
  std::vector<std::string> names = b.optimizers;
  if (names.size() == 1 && names[0] == "all") names = {"adamw", "muon", "scion", "shampoo", "soap", "psgd"};
  std::vector<std::pair<std::string, BenchResult>> rows;
  for (const auto& name : names) {
    CommonArgs one = a;
    one.sets.push_back("optimizer.name=" + name);
    const LoadedConfig lc = load_config(one);
    rows.emplace_back(name, bench_training(lc.run, b.warmup, b.steps, MPI_COMM_WORLD));
  }
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  log_info(describe_optimizer_table(rows, ranks));
  return 0;
}

}  // namespace quopt::app
