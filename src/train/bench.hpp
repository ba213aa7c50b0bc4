#pragma once
// `quopt bench`: training throughput on synthetic tokens, and how well the GEMMs inside training use
// the BLAS: their achieved rate as a ratio to a bare BLAS sgemm replay of the same shapes, measured in
// the same process right after.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/run_config.hpp"
#include "kernels/ops.hpp"

namespace quopt {

// One GEMM shape of the training step with its bare cblas_sgemm rate (bench_training).
struct GemmShapeRate {
  kernels::GemmShape shape;
  std::int64_t calls = 0;  // per timed run of the step's shapes (all timed steps)
  double bare_gflops_rate = 0.0;
};

struct BenchResult {
  std::int64_t steps = 0, tokens_per_step = 0;
  double step_seconds = 0.0;  // mean wall time of one optimizer step (forward+backward+update)
  double tokens_per_s = 0.0;
  std::string device = "host";  // where it ran (GPU name and train.precision on cuda)
  double tokens_per_cpu_s = 0.0;  // tokens per second of this process's CPU time (all threads)
  double gemm_seconds = 0.0;      // per step, inside matmul/matmul_batched
  double gemm_gflops_rate = 0.0;  // achieved inside training
  double bare_gflops_rate = 0.0;  // cblas_sgemm on the same shapes, same call counts
  std::int64_t gemm_shapes = 0, gemm_calls = 0;
  std::vector<GemmShapeRate> shape_rates;  // host only: each shape's bare rate
  // Split of the step: forward + backward, and the optimizer step with its own report
  // (preconditioner statistics, root/eigen work, communication, the rest), per step.
  double grad_seconds = 0.0, optimizer_seconds = 0.0;
  double precond_seconds = 0.0, root_seconds = 0.0, comm_seconds = 0.0, update_seconds = 0.0;
  double balance = 1.0;
  std::int64_t state_bytes = 0;
};

// Every rank of `comm` runs the same model on the same synthetic batch; the optimizer shards its matrix
// work over `comm` (so np > 1 measures the distributed optimizer step).
BenchResult bench_training(const RunConfig& cfg, std::int64_t warmup, std::int64_t steps,
                           MPI_Comm comm = MPI_COMM_SELF);
std::string describe(const BenchResult& r, const RunConfig& cfg);
// One line per GEMM shape: "gemm m n k batch trans_a trans_b calls GFLOP/s" (row-major; quopt bench
// --gemm-shapes), the input of tests/reference/bench_vs_torch.py --gemm.
std::string describe_gemm_shapes(const BenchResult& r);
// One line per optimizer: step time and its parts as ratios to AdamW's step time.
std::string describe_optimizer_table(const std::vector<std::pair<std::string, BenchResult>>& rows, int ranks);

}  // namespace quopt
