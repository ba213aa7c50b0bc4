// PSGD-Kron sharded over MPI_COMM_WORLD (run at np 1, 2, 4): the same parameters and gradients on every
// rank give the same parameters as an unsharded copy (MPI_COMM_SELF) after 20 steps, with the random
// draws (update coin, balance coin, probes v) independent of the sharding; the sharded copy holds less
// state; a checkpoint-style round trip of state() + steps_taken continues identically.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdint>

#include "core/rng.hpp"
#include "optim/psgd_kron.hpp"
#include "support/optim_mpi.hpp"

namespace quopt {
namespace {

using testing::all_ranks;
using testing::compare;
using testing::copy_values;
using testing::restore;
using testing::world_size;

void build(ParameterSet& ps) {
  ps.add("embed/weight", ParamRole::Embedding, {24, 8}, DType::F32);
  ps.add("block.00/attn_q", ParamRole::Hidden, {8, 8}, DType::F32);
  ps.add("block.00/attn_norm", ParamRole::Gain, {8}, DType::F32);
  ps.add("block.00/mlp_up", ParamRole::Hidden, {16, 8}, DType::F32);
  ps.add("block.00/mlp_down", ParamRole::Hidden, {8, 16}, DType::F32);
  ps.add("block.01/attn_q", ParamRole::Hidden, {8, 8}, DType::F32);
  ps.add("block.01/mlp_up", ParamRole::Hidden, {40, 8}, DType::F32);  // diagonal on dim 0 (> 32 below)
  ps.add("final_norm/weight", ParamRole::Gain, {8}, DType::F32);
  Rng init(1, 2);
  for (auto& p : ps.all())
    for (std::int64_t k = 0; k < p.value.numel(); ++k)
      p.value.data<float>()[k] = static_cast<float>(0.1 * init.normal());
}

// The same synthetic gradients on every rank for step t.
void set_grads(ParameterSet& ps, int t) {
  for (auto& p : ps.all()) {
    Rng g(77, hash_name(p.name));
    g.set_counter(static_cast<std::uint64_t>(t) * 2u * static_cast<std::uint64_t>(p.grad.numel()));
    for (std::int64_t k = 0; k < p.grad.numel(); ++k)
      p.grad.data<float>()[k] = static_cast<float>(0.5 * g.normal() + 0.01 * t);
  }
}

PsgdOptions options() {
  PsgdOptions o;
  o.max_size_triangular = 32;
  o.update_prob_flat_start = 3;  // update coin with p < 1 within the 20 steps
  o.update_prob_decay = 0.1;
  o.update_prob_min = 0.3;
  o.balance_prob = 0.5;  // balancing happens on some update steps
  return o;
}

OptimizerConfig config() {
  OptimizerConfig c;
  c.weight_decay = 0.1;
  c.decay_roles = {"hidden", "embedding"};
  return c;
}

TEST(PsgdMpi, ShardedMatchesLocalAndResumes) {
  ParameterSet sharded_p, local_p;
  build(sharded_p);
  build(local_p);
  OptimizerContext world, self;
  world.data = MPI_COMM_WORLD;
  self.data = MPI_COMM_SELF;
  world.seed = self.seed = 1234;
  PsgdKron sharded(config(), options(), sharded_p, world), local(config(), options(), local_p, self);
  int updates = 0, balances = 0;
  for (int t = 0; t < 20; ++t) {
    set_grads(sharded_p, t);
    set_grads(local_p, t);
    sharded.step(sharded_p, 0.02);
    local.step(local_p, 0.02);
    ASSERT_EQ(sharded.last_step_updated_preconditioner(), local.last_step_updated_preconditioner());
    updates += sharded.last_step_updated_preconditioner();
    balances += sharded.last_step_balanced();
  }
  EXPECT_GT(updates, 5);
  EXPECT_LT(updates, 20);  // the coin said no on some steps
  EXPECT_GT(balances, 0);
  const auto [rel, differ] = compare(sharded_p, local_p);
  EXPECT_TRUE(all_ranks(rel <= 1e-5)) << "relative difference " << rel;
  EXPECT_TRUE(all_ranks(differ == 0))
      << differ << " elements differ: sharded and local PSGD differ in the last bits";
  // The parameters moved.
  EXPECT_GT(std::fabs(local_p.all()[1].value.data<float>()[0] - 0.0f), 0.0f);

  const OptimizerReport rs = sharded.report(), rl = local.report();
  EXPECT_EQ(rl.balance, 1.0);
  EXPECT_GE(rs.balance, 1.0);
  EXPECT_EQ(rs.failed_roots, 0);
  if (world_size() > 1) {
    EXPECT_TRUE(all_ranks(rs.state_bytes < rl.state_bytes))
        << "sharded " << rs.state_bytes << " bytes, local " << rl.state_bytes;
    EXPECT_GT(rs.comm_seconds, 0.0);
  } else {
    EXPECT_EQ(rs.state_bytes, rl.state_bytes);
  }
  // Every state name is owned by exactly one rank: the sum over ranks equals the local total.
  long long total = rs.state_bytes;
  MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, rl.state_bytes);

  // Checkpoint-style round trip: a fresh optimizer (same communicator) gets a copy of state() and the step.
  ParameterSet resumed_p;
  build(resumed_p);
  copy_values(resumed_p, sharded_p);
  PsgdKron resumed(config(), options(), resumed_p, world);
  ASSERT_EQ(resumed.state().size(), sharded.state().size());
  ASSERT_TRUE(all_ranks(restore(resumed, sharded)));
  for (int t = 20; t < 23; ++t) {
    set_grads(sharded_p, t);
    set_grads(resumed_p, t);
    sharded.step(sharded_p, 0.02);
    resumed.step(resumed_p, 0.02);
  }
  EXPECT_TRUE(all_ranks(compare(sharded_p, resumed_p).second == 0));
}

}  // namespace
}  // namespace quopt
