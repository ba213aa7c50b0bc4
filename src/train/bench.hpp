#pragma once
// `quopt bench`: training throughput on synthetic tokens, and how well the GEMMs inside training use
// the BLAS: their achieved rate as a ratio to a bare BLAS sgemm replay of the same shapes, measured in
// the same process right after.
#include <cstdint>
#include <string>

#include "io/run_config.hpp"

namespace quopt {

struct BenchResult {
  std::int64_t steps = 0, tokens_per_step = 0;
  double step_seconds = 0.0;        // mean wall time of one optimizer step (forward+backward+update)
  double tokens_per_s = 0.0;
  double gemm_seconds = 0.0;        // per step, inside matmul/matmul_batched
  double gemm_gflops_rate = 0.0;    // achieved inside training
  double bare_gflops_rate = 0.0;    // cblas_sgemm on the same shapes, same call counts
  std::int64_t gemm_shapes = 0, gemm_calls = 0;
};

BenchResult bench_training(const RunConfig& cfg, std::int64_t warmup, std::int64_t steps);
std::string describe(const BenchResult& r, const RunConfig& cfg);

}  // namespace quopt
