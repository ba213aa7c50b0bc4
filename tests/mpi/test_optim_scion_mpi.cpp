// Sharded Scion (run under mpiexec at np 1, 2, 4): with the Spectral LMOs sharded over
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
#include "optim/scion.hpp"
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
  c.name = "scion";
  c.lr = 0.02;
  c.weight_decay = 0.0;
  return c;
}

// Radii of the order of the weights here, so that every LMO visibly moves them.
ScionOptions options() {
  ScionOptions o;
  o.scale_hidden = 1.0;
  o.scale_output = 4.0;
  o.scale_gain = 1.0;
  return o;
}

std::unique_ptr<Scion> make(ParameterSet& ps, MPI_Comm comm) {
  return std::make_unique<Scion>(cfg(), options(), ps, true, comm);
}

TEST(ScionSharded, MatchesUnshardedAndResumes) {
  ShardedPair<Scion> pair(build, make);
  EXPECT_EQ(pair.world->plan().ranks(), world_size());
  pair.step_and_expect_bitwise(20, 0.02);

  // State: the hidden matrices' momentum buffers are split over the ranks, the others replicated.
  const OptimizerReport rw = pair.world->report(), rs = pair.self->report();
  if (world_size() > 1) {
    EXPECT_TRUE(all_ranks(rw.state_bytes < rs.state_bytes)) << rw.state_bytes << " vs " << rs.state_bytes;
    EXPECT_GE(rw.balance, 1.0);
    EXPECT_LT(rw.balance, 2.0);
  }
  // Hidden matrices' buffers are held exactly once over the ranks; the others by every rank.
  auto is_hidden = [&](const std::string& state_name) {
    for (const auto& p : pair.self_params.all())
      if (p.role == ParamRole::Hidden && state_name == p.name + "/momentum_buffer") return true;
    return false;
  };
  std::int64_t hidden_bytes = 0, hidden_bytes_self = 0, other_bytes = 0, other_bytes_self = 0;
  for (auto& s : pair.world->state())
    (is_hidden(s.name) ? hidden_bytes : other_bytes) += static_cast<std::int64_t>(s.tensor.nbytes());
  for (auto& s : pair.self->state())
    (is_hidden(s.name) ? hidden_bytes_self : other_bytes_self) +=
        static_cast<std::int64_t>(s.tensor.nbytes());
  MPI_Allreduce(MPI_IN_PLACE, &hidden_bytes, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(hidden_bytes, hidden_bytes_self);
  EXPECT_GT(hidden_bytes, 0);
  EXPECT_EQ(other_bytes, other_bytes_self);
  EXPECT_GE(rw.root_seconds, 0.0);
  EXPECT_GT(rs.root_seconds, 0.0);

  pair.expect_resume_continues(0.01);
}

TEST(ScionSharded, EveryRankEndsWithTheSameParameters) {
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
