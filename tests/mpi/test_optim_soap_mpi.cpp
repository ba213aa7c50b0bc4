// Sharded SOAP (run under mpiexec at np 1, 2, 4): with the parameters sharded over MPI_COMM_WORLD, 20 steps
// on identical synthetic gradients give the same parameters as an unsharded copy (MPI_COMM_SELF), bitwise;
// every parameter's state is held by exactly one rank, so each rank holds less than the unsharded copy; and a
// checkpoint-style round trip through state() (from the sharded copy, or from the unsharded one, i.e. from a
// different number of ranks) continues identically.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <memory>

#include "core/rng.hpp"
#include "optim/soap.hpp"
#include "support/optim_mpi.hpp"

namespace quopt {
namespace {

using testing::all_ranks;
using testing::ShardedPair;
using testing::world_size;

// A model-like parameter set: 12 items of various sizes (with max_precond_dim 32 the embedding's 40 rows and
// the MLP's 40-wide side get no factor).
void build(ParameterSet& ps) {
  testing::build_params(ps, 2, 12, 40);
}

OptimizerConfig cfg() {
  OptimizerConfig c;
  c.name = "soap";
  c.lr = 0.01;
  c.weight_decay = 0.1;
  c.decay_roles = {"hidden"};
  return c;
}

SoapOptions options() {
  SoapOptions o;
  o.max_precond_dim = 32;
  o.precondition_frequency = 3;  // basis refreshes at SOAP steps 3, 6, 9, ...
  o.precondition_1d = true;      // the gains get factors too
  return o;
}

std::unique_ptr<Soap> make(ParameterSet& ps, MPI_Comm comm) {
  return std::make_unique<Soap>(cfg(), options(), ps, comm);
}

TEST(SoapSharded, MatchesUnshardedAndResumes) {
  ShardedPair<Soap> pair(build, make);
  EXPECT_EQ(pair.world->plan().ranks(), world_size());
  EXPECT_EQ(pair.world->plan().size(), 12u);
  pair.step_and_expect_bitwise(20, 3e-3);

  // Every block's state is held by exactly one rank.
  const OptimizerReport rw = pair.world->report(), rs = pair.self->report();
  std::int64_t bytes = rw.state_bytes;
  MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(bytes, rs.state_bytes);
  if (world_size() > 1) {
    EXPECT_TRUE(all_ranks(rw.state_bytes < rs.state_bytes)) << rw.state_bytes << " vs " << rs.state_bytes;
    EXPECT_GE(rw.balance, 1.0);
    EXPECT_LT(rw.balance, 2.0);
  }
  EXPECT_EQ(rw.failed_roots, 0);
  EXPECT_GT(rs.root_seconds, 0.0);
  EXPECT_GE(rw.comm_seconds, 0.0);

  pair.expect_resume_continues(0.005);
}

TEST(SoapSharded, StateNamesDoNotDependOnTheRankCount) {
  ShardedPair<Soap> pair(build, make);
  pair.expect_state_names_partitioned();
}

}  // namespace
}  // namespace quopt
