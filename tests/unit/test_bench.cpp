// quopt bench (train/bench.hpp): the per-shape GEMM rates that `--gemm-shapes` prints and
// tests/reference/bench_vs_torch.py --gemm reads cover exactly the step's GEMMs.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "io/run_config.hpp"
#include "train/bench.hpp"

namespace quopt {
namespace {

RunConfig tiny_run() {
  RunConfig rc;
  rc.model.name = "bench-test";
  rc.model.d_model = 32;
  rc.model.n_layers = 2;
  rc.model.n_heads = 2;
  rc.model.n_kv_heads = 2;
  rc.model.vocab_size = 96;
  rc.model.seq_len = 16;
  rc.train.batch_size = 4;
  rc.train.micro_batch_size = 2;
  rc.optimizer.name = "adamw";
  return rc;
}

TEST(Bench, GemmShapeRatesCoverTheStep) {
  const RunConfig rc = tiny_run();
  const BenchResult r = bench_training(rc, 1, 2, MPI_COMM_SELF);
  EXPECT_EQ(r.tokens_per_step, 4 * 16);
  ASSERT_FALSE(r.shape_rates.empty());
  EXPECT_EQ(static_cast<std::int64_t>(r.shape_rates.size()), r.gemm_shapes);
  std::int64_t calls = 0;
  std::set<std::tuple<std::int64_t, std::int64_t, std::int64_t, bool, bool>> seen;
  for (const auto& g : r.shape_rates) {
    calls += g.calls;
    EXPECT_GT(g.bare_gflops_rate, 0.0);
    EXPECT_TRUE(seen.insert({g.shape.m, g.shape.n, g.shape.k, g.shape.trans_a, g.shape.trans_b}).second)
        << "shape listed twice";
  }
  EXPECT_EQ(calls, r.gemm_calls);
  // Two micro-batches per step, two timed steps: every shape's count is a multiple of 4.
  for (const auto& g : r.shape_rates) EXPECT_EQ(g.calls % 4, 0) << g.shape.m << "x" << g.shape.n;
  // The head's forward GEMM: [micro-batch tokens, vocab] = z [32 rows, d] x W^T.
  EXPECT_EQ(seen.count({2 * 16, 96, 32, false, true}), 1u);
  // The aggregate rate lies between the slowest and the fastest shape.
  double lo = 1e300, hi = 0;
  for (const auto& g : r.shape_rates) lo = std::min(lo, g.bare_gflops_rate), hi = std::max(hi, g.bare_gflops_rate);
  EXPECT_GE(r.bare_gflops_rate, lo * (1 - 1e-9));
  EXPECT_LE(r.bare_gflops_rate, hi * (1 + 1e-9));

  // One "gemm M N K BATCH TA TB CALLS RATE" line per shape, in the same order.
  std::istringstream lines(describe_gemm_shapes(r));
  std::string word;
  std::size_t i = 0;
  for (std::string line; std::getline(lines, line); ++i) {
    std::istringstream in(line);
    std::int64_t m, n, k, batch, calls_i;
    int ta, tb;
    double rate;
    ASSERT_TRUE(static_cast<bool>(in >> word >> m >> n >> k >> batch >> ta >> tb >> calls_i >> rate)) << line;
    ASSERT_LT(i, r.shape_rates.size());
    const auto& g = r.shape_rates[i];
    EXPECT_EQ(word, "gemm");
    EXPECT_EQ(m, g.shape.m);
    EXPECT_EQ(n, g.shape.n);
    EXPECT_EQ(k, g.shape.k);
    EXPECT_EQ(batch, g.shape.batch);
    EXPECT_EQ(ta != 0, g.shape.trans_a);
    EXPECT_EQ(tb != 0, g.shape.trans_b);
    EXPECT_EQ(calls_i, g.calls);
    EXPECT_NEAR(rate, g.bare_gflops_rate, 1e-3 + 1e-6 * g.bare_gflops_rate);
  }
  EXPECT_EQ(i, r.shape_rates.size());
}

}  // namespace
}  // namespace quopt
