// Sharded Shampoo (run under mpiexec at np 1, 2, 4): with the blocks sharded over MPI_COMM_WORLD, 20 steps on
// identical synthetic gradients give the same parameters as an unsharded copy (MPI_COMM_SELF), bitwise;
// every block's state is held by exactly one rank, so each rank holds less than the unsharded copy; and a
// checkpoint-style round trip through state() (from the sharded copy, or from the unsharded one, i.e. from a
// different number of ranks) continues identically.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.hpp"
#include "optim/shampoo.hpp"
#include "support/optim_mpi.hpp"

namespace quopt {
namespace {

using testing::all_ranks;
using testing::compare;
using testing::gradients;
using testing::restore;
using testing::world_size;

// A model-like parameter set; with max_preconditioner_dim 16 it splits into 22 blocks of various sizes.
void build(ParameterSet& ps) {
  testing::build_params(ps, 2, 12, 40);
}

void copy_values(ParameterSet& to, const ParameterSet& from) {
  for (std::size_t k = 0; k < to.all().size(); ++k) to.all()[k].value.copy_from(from.all()[k].value);
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

TEST(ShampooSharded, MatchesUnshardedAndResumes) {
  ParameterSet ps_world, ps_self;
  build(ps_world);
  build(ps_self);
  Shampoo world(cfg(), options(), ps_world, MPI_COMM_WORLD);
  Shampoo self(cfg(), options(), ps_self, MPI_COMM_SELF);
  EXPECT_EQ(world.plan().ranks(), world_size());
  EXPECT_EQ(world.plan().size(), 22u);
  for (int t = 0; t < 20; ++t) {
    const double lr = 0.01 * (1.0 - t / 40.0);  // a decaying schedule
    gradients(ps_world, t);
    gradients(ps_self, t);
    world.step(ps_world, lr);
    self.step(ps_self, lr);
  }
  const auto [rel, differ] = compare(ps_world, ps_self);
  EXPECT_TRUE(all_ranks(rel <= 1e-5)) << "relative difference " << rel;
  EXPECT_TRUE(all_ranks(differ == 0)) << differ << " elements differ (expected bitwise agreement)";

  // Every block's state is held by exactly one rank.
  const OptimizerReport rw = world.report(), rs = self.report();
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

  // Checkpoint round trip (same ranks, and from the unsharded copy = a different number of ranks).
  ParameterSet ps_a, ps_b, ps_c;
  build(ps_a);
  build(ps_b);
  build(ps_c);
  copy_values(ps_a, ps_world);
  copy_values(ps_b, ps_world);
  copy_values(ps_c, ps_world);
  Shampoo from_world(cfg(), options(), ps_a, MPI_COMM_WORLD);
  Shampoo from_self(cfg(), options(), ps_b, MPI_COMM_WORLD);
  Shampoo fresh(cfg(), options(), ps_c, MPI_COMM_WORLD);  // control: not restored
  ASSERT_TRUE(all_ranks(restore(from_world, world)));
  ASSERT_TRUE(all_ranks(restore(from_self, self)));
  EXPECT_EQ(from_world.steps_taken(), 20);
  for (int t = 20; t < 23; ++t) {
    for (ParameterSet* ps : {&ps_world, &ps_a, &ps_b, &ps_c}) gradients(*ps, t);
    world.step(ps_world, 0.005);
    from_world.step(ps_a, 0.005);
    from_self.step(ps_b, 0.005);
    fresh.step(ps_c, 0.005);
  }
  EXPECT_TRUE(all_ranks(compare(ps_a, ps_world).second == 0));
  EXPECT_TRUE(all_ranks(compare(ps_b, ps_world).second == 0));
  EXPECT_TRUE(all_ranks(compare(ps_c, ps_world).first > 1e-3));
}

TEST(ShampooSharded, StateNamesDoNotDependOnTheRankCount) {
  ParameterSet ps_world, ps_self;
  build(ps_world);
  build(ps_self);
  Shampoo world(cfg(), options(), ps_world, MPI_COMM_WORLD);
  Shampoo self(cfg(), options(), ps_self, MPI_COMM_SELF);
  std::set<std::string> all_self;
  for (auto& s : self.state()) all_self.insert(s.name);
  // This rank's names are a subset of the unsharded names, and the ranks' counts add up to all of them.
  bool subset = true;
  long count = 0;
  for (auto& s : world.state()) {
    subset = subset && all_self.count(s.name) == 1;
    ++count;
  }
  EXPECT_TRUE(all_ranks(subset));
  MPI_Allreduce(MPI_IN_PLACE, &count, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(count, static_cast<long>(all_self.size()));
}

}  // namespace
}  // namespace quopt
