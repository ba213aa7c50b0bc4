// Sharded Shampoo (run under mpiexec at np 1, 2, 4): with the blocks sharded over MPI_COMM_WORLD, 20 steps on
// identical synthetic gradients give the same parameters as an unsharded copy (MPI_COMM_SELF), bitwise;
// every block's state is held by exactly one rank, so each rank holds less than the unsharded copy; and a
// checkpoint-style round trip through state() (from the sharded copy, or from the unsharded one, i.e. from a
// different number of ranks) continues identically.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <memory>

#include "core/rng.hpp"
#include "optim/shampoo.hpp"
#include "support/optim_mpi.hpp"

namespace quopt {
namespace {

using testing::all_ranks;
using testing::ShardedPair;
using testing::world_size;

// A model-like parameter set; with max_preconditioner_dim 16 it splits into 22 blocks of various sizes.
void build(ParameterSet& ps) {
  testing::build_params(ps, 2, 12, 40);
}

OptimizerConfig cfg() {
  OptimizerConfig c;
  c.name = "shampoo";
  c.lr = 0.01;
  c.weight_decay = 0.1;
  c.decay_roles = {"hidden"};
  return c;
}

ShampooOptions options() {
  ShampooOptions o;
  o.max_preconditioner_dim = 16;
  o.merge_dims = false;
  o.epsilon = 1e-6;
  o.precondition_frequency = 3;  // grafting for steps 1-2, roots at 3, 6, 9, ...
  o.momentum = 0.5;              // momentum state is sharded too
  o.nesterov = true;
  return o;
}

std::unique_ptr<Shampoo> make(ParameterSet& ps, MPI_Comm comm) {
  return std::make_unique<Shampoo>(cfg(), options(), ps, comm);
}

TEST(ShampooSharded, MatchesUnshardedAndResumes) {
  ShardedPair<Shampoo> pair(build, make);
  EXPECT_EQ(pair.world->plan().ranks(), world_size());
  EXPECT_EQ(pair.world->plan().size(), 22u);
  pair.step_and_expect_bitwise(20, 0.01);

  // Every block's state is held by exactly one rank.
  const OptimizerReport rw = pair.world->report(), rs = pair.self->report();
  std::int64_t bytes = rw.state_bytes;
  MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(bytes, rs.state_bytes);
  if (world_size() > 1) {
    EXPECT_TRUE(all_ranks(rw.state_bytes < rs.state_bytes)) << rw.state_bytes << " vs " << rs.state_bytes;
    EXPECT_GE(rw.balance, 1.0);
    EXPECT_LT(rw.balance, 1.5);
  }
  EXPECT_EQ(rw.failed_roots, 0);
  EXPECT_GT(rs.root_seconds, 0.0);
  EXPECT_GE(rw.comm_seconds, 0.0);

  pair.expect_resume_continues(0.005);
}

TEST(ShampooSharded, StateNamesDoNotDependOnTheRankCount) {
  ShardedPair<Shampoo> pair(build, make);
  pair.expect_state_names_partitioned();
}

}  // namespace
}  // namespace quopt
