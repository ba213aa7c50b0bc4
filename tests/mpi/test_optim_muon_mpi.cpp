// Sharded Muon (run under mpiexec at np 1, 2, 4): with the orthogonalisations sharded over
// MPI_COMM_WORLD, 20 steps on identical synthetic gradients give the same parameters as an unsharded
// copy (MPI_COMM_SELF) on every rank, bitwise; each rank holds less state than the unsharded copy;
// and a checkpoint-style round trip through state() (from the sharded or the unsharded copy, i.e.
// from a different number of ranks) continues identically.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "optim/muon.hpp"
#include "support/optim_mpi.hpp"

namespace quopt {
namespace {

using testing::all_ranks;
using testing::compare;
using testing::gradients;
using testing::restore;
using testing::world_size;

// A model-like parameter set: 3 blocks of differently shaped hidden matrices, an embedding, gains.
void build(ParameterSet& ps) {
  testing::build_params(ps, 3, 16, 48);
}

OptimizerConfig cfg() {
  OptimizerConfig c;
  c.name = "muon";
  c.lr = 0.02;
  c.weight_decay = 0.01;
  c.decay_roles = {"hidden", "gain"};
  return c;
}

MuonOptions options() {
  MuonOptions o;
  o.adam_weight_decay = 0.1;
  return o;
}

TEST(MuonSharded, MatchesUnshardedAndResumes) {
  ParameterSet ps_world, ps_self;
  build(ps_world);
  build(ps_self);
  Muon world(cfg(), options(), ps_world, MPI_COMM_WORLD);
  Muon self(cfg(), options(), ps_self, MPI_COMM_SELF);
  EXPECT_EQ(world.plan().ranks(), world_size());
  for (int t = 0; t < 20; ++t) {
    const double lr = 0.02 * (1.0 - t / 40.0);  // a decaying schedule
    gradients(ps_world, t);
    gradients(ps_self, t);
    world.step(ps_world, lr);
    self.step(ps_self, lr);
  }
  const auto [rel, differ] = compare(ps_world, ps_self);
  EXPECT_TRUE(all_ranks(rel <= 1e-5)) << "relative difference " << rel;
  EXPECT_TRUE(all_ranks(differ == 0)) << differ << " elements differ (expected bitwise agreement)";

  // State: the momentum buffers are split over the ranks, the side AdamW state is replicated.
  const OptimizerReport rw = world.report(), rs = self.report();
  if (world_size() > 1) {
    EXPECT_TRUE(all_ranks(rw.state_bytes < rs.state_bytes)) << rw.state_bytes << " vs " << rs.state_bytes;
    EXPECT_GE(rw.balance, 1.0);
    EXPECT_LT(rw.balance, 2.0);
  }
  std::int64_t momentum_bytes = 0, momentum_bytes_self = 0;
  for (auto& s : world.state())
    if (s.name.find("/momentum_buffer") != std::string::npos)
      momentum_bytes += static_cast<std::int64_t>(s.tensor.nbytes());
  for (auto& s : self.state())
    if (s.name.find("/momentum_buffer") != std::string::npos)
      momentum_bytes_self += static_cast<std::int64_t>(s.tensor.nbytes());
  MPI_Allreduce(MPI_IN_PLACE, &momentum_bytes, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(momentum_bytes, momentum_bytes_self);  // every buffer held exactly once
  EXPECT_GE(rw.root_seconds, 0.0);
  EXPECT_GT(rs.root_seconds, 0.0);

  // Checkpoint round trip: a fresh sharded optimizer restored from the sharded one (same ranks) and
  // another restored from the unsharded one (a different number of ranks) continue as the original.
  ParameterSet ps_a, ps_b;
  build(ps_a);
  build(ps_b);
  for (std::size_t k = 0; k < ps_a.all().size(); ++k) {
    ps_a.all()[k].value.copy_from(ps_world.all()[k].value);
    ps_b.all()[k].value.copy_from(ps_world.all()[k].value);
  }
  Muon from_world(cfg(), options(), ps_a, MPI_COMM_WORLD);
  Muon from_self(cfg(), options(), ps_b, MPI_COMM_WORLD);
  // Control: the same parameters with a fresh (unrestored) optimizer must end elsewhere.
  ParameterSet ps_c;
  build(ps_c);
  for (std::size_t k = 0; k < ps_c.all().size(); ++k) ps_c.all()[k].value.copy_from(ps_world.all()[k].value);
  Muon fresh(cfg(), options(), ps_c, MPI_COMM_WORLD);
  ASSERT_TRUE(all_ranks(restore(from_world, world)));
  ASSERT_TRUE(all_ranks(restore(from_self, self)));
  EXPECT_EQ(from_world.steps_taken(), 20);
  for (int t = 20; t < 23; ++t) {
    for (ParameterSet* ps : {&ps_world, &ps_a, &ps_b, &ps_c}) gradients(*ps, t);
    world.step(ps_world, 0.01);
    fresh.step(ps_c, 0.01);
    from_world.step(ps_a, 0.01);
    from_self.step(ps_b, 0.01);
  }
  EXPECT_TRUE(all_ranks(compare(ps_a, ps_world).second == 0));
  EXPECT_TRUE(all_ranks(compare(ps_b, ps_world).second == 0));
  EXPECT_TRUE(all_ranks(compare(ps_c, ps_world).first > 1e-3));
}

TEST(MuonSharded, EveryRankEndsWithTheSameParameters) {
  ParameterSet ps;
  build(ps);
  Muon world(cfg(), options(), ps, MPI_COMM_WORLD);
  for (int t = 0; t < 5; ++t) {
    gradients(ps, t);
    world.step(ps, 0.02);
  }
  // Rank 0's values broadcast and compared on every rank.
  bool same = true;
  for (auto& p : ps.all()) {
    std::vector<float> v(p.value.data<float>(), p.value.data<float>() + p.value.numel());
    MPI_Bcast(v.data(), static_cast<int>(v.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
    same = same && std::memcmp(v.data(), p.value.data<float>(), v.size() * sizeof(float)) == 0;
  }
  EXPECT_TRUE(all_ranks(same));
}

}  // namespace
}  // namespace quopt
