// Sharded Muon (run under mpiexec at np 1, 2, 4): with the orthogonalisations sharded over
// MPI_COMM_WORLD, 20 steps on identical synthetic gradients give the same parameters as an unsharded
// copy (MPI_COMM_SELF) on every rank, bitwise; each rank holds less state than the unsharded copy;
// and a checkpoint-style round trip through state() (from the sharded or the unsharded copy, i.e.
// from a different number of ranks) continues identically.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/rng.hpp"
#include "optim/muon.hpp"
#include "support/optim_mpi.hpp"

namespace quopt {
namespace {

using testing::all_ranks;
using testing::gradients;
using testing::same_on_every_rank;
using testing::ShardedPair;
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

std::unique_ptr<Muon> make(ParameterSet& ps, MPI_Comm comm) {
  return std::make_unique<Muon>(cfg(), options(), ps, comm);
}

TEST(MuonSharded, MatchesUnshardedAndResumes) {
  ShardedPair<Muon> pair(build, make);
  EXPECT_EQ(pair.world->plan().ranks(), world_size());
  pair.step_and_expect_bitwise(20, 0.02);

  // State: the momentum buffers are split over the ranks, the side AdamW state is replicated.
  const OptimizerReport rw = pair.world->report(), rs = pair.self->report();
  if (world_size() > 1) {
    EXPECT_TRUE(all_ranks(rw.state_bytes < rs.state_bytes)) << rw.state_bytes << " vs " << rs.state_bytes;
    EXPECT_GE(rw.balance, 1.0);
    EXPECT_LT(rw.balance, 2.0);
  }
  std::int64_t momentum_bytes = 0, momentum_bytes_self = 0;
  for (auto& s : pair.world->state())
    if (s.name.find("/momentum_buffer") != std::string::npos)
      momentum_bytes += static_cast<std::int64_t>(s.tensor.nbytes());
  for (auto& s : pair.self->state())
    if (s.name.find("/momentum_buffer") != std::string::npos)
      momentum_bytes_self += static_cast<std::int64_t>(s.tensor.nbytes());
  MPI_Allreduce(MPI_IN_PLACE, &momentum_bytes, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(momentum_bytes, momentum_bytes_self);  // every buffer held exactly once
  EXPECT_GE(rw.root_seconds, 0.0);
  EXPECT_GT(rs.root_seconds, 0.0);

  pair.expect_resume_continues(0.01);
}

TEST(MuonSharded, EveryRankEndsWithTheSameParameters) {
  ParameterSet ps;
  build(ps);
  auto world = make(ps, MPI_COMM_WORLD);
  for (int t = 0; t < 5; ++t) {
    gradients(ps, t);
    world->step(ps, 0.02);
  }
  EXPECT_TRUE(same_on_every_rank(ps));
}

}  // namespace
}  // namespace quopt
