// Sharded SOAP (run under mpiexec at np 1, 2, 4): with the parameters sharded over MPI_COMM_WORLD, 20 steps
// on identical synthetic gradients give the same parameters as an unsharded copy (MPI_COMM_SELF), bitwise;
// every parameter's state is held by exactly one rank, so each rank holds less than the unsharded copy; and a
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
#include "optim/soap.hpp"

namespace quopt {
namespace {

int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

bool all_ranks(bool ok) {
  int v = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return v == 1;
}

// A model-like parameter set: 12 items of various sizes (with max_precond_dim 32 the embedding's 40 rows and
// the MLP's 40-wide side get no factor).
void build(ParameterSet& ps) {
  ps.add("embed/weight", ParamRole::Embedding, {40, 16}, DType::F32);
  for (int b = 0; b < 2; ++b) {
    const std::string n = "block.0" + std::to_string(b) + "/";
    ps.add(n + "attn_q", ParamRole::Hidden, {16, 16}, DType::F32);
    ps.add(n + "attn_k", ParamRole::Hidden, {8, 12}, DType::F32);
    ps.add(n + "attn_norm", ParamRole::Gain, {16}, DType::F32);
    ps.add(n + "mlp_up", ParamRole::Hidden, {40, 16}, DType::F32);
    ps.add(n + "mlp_down", ParamRole::Hidden, {16, 40}, DType::F32);
  }
  ps.add("final_norm/weight", ParamRole::Gain, {16}, DType::F32);
  Rng rng(17, 3);
  for (auto& p : ps.all())
    for (std::int64_t i = 0; i < p.value.numel(); ++i)
      p.value.data<float>()[i] = static_cast<float>(p.role == ParamRole::Gain ? 1.0 : 0.02 * rng.normal());
}

// The same gradients on every rank for step t.
void gradients(ParameterSet& ps, int t) {
  for (auto& p : ps.all()) {
    Rng rng(99, hash_name(p.name) + static_cast<std::uint64_t>(t));
    for (std::int64_t i = 0; i < p.grad.numel(); ++i)
      p.grad.data<float>()[i] = static_cast<float>(rng.normal());
  }
}

// Largest relative difference and the number of elements that differ at all.
std::pair<double, std::int64_t> compare(const ParameterSet& a, const ParameterSet& b) {
  double worst = 0.0;
  std::int64_t differ = 0;
  for (std::size_t k = 0; k < a.all().size(); ++k) {
    const float* x = a.all()[k].value.data<float>();
    const float* y = b.all()[k].value.data<float>();
    for (std::int64_t i = 0; i < a.all()[k].value.numel(); ++i) {
      worst = std::max(worst, std::fabs(double(x[i]) - y[i]) / (std::fabs(double(y[i])) + 1e-6));
      if (std::memcmp(&x[i], &y[i], sizeof(float)) != 0) ++differ;
    }
  }
  return {worst, differ};
}

// Restores `to` from `from` by name, as a checkpoint reader does: every tensor `to` holds must exist.
bool restore(Optimizer& to, Optimizer& from) {
  std::map<std::string, Tensor> saved;
  for (auto& s : from.state()) saved[s.name] = s.tensor;
  for (auto& s : to.state()) {
    auto it = saved.find(s.name);
    if (it == saved.end() || it->second.shape() != s.tensor.shape()) return false;
    s.tensor.copy_from(it->second);
  }
  to.set_steps_taken(from.steps_taken());
  return true;
}

void copy_values(ParameterSet& to, const ParameterSet& from) {
  for (std::size_t k = 0; k < to.all().size(); ++k) to.all()[k].value.copy_from(from.all()[k].value);
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

TEST(SoapSharded, MatchesUnshardedAndResumes) {
  ParameterSet ps_world, ps_self;
  build(ps_world);
  build(ps_self);
  Soap world(cfg(), options(), ps_world, MPI_COMM_WORLD);
  Soap self(cfg(), options(), ps_self, MPI_COMM_SELF);
  EXPECT_EQ(world.plan().ranks(), world_size());
  EXPECT_EQ(world.plan().size(), 12u);
  for (int t = 0; t < 20; ++t) {
    const double lr = 3e-3 * (1.0 - t / 40.0);  // a decaying schedule
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
    EXPECT_LT(rw.balance, 2.0);
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
  Soap from_world(cfg(), options(), ps_a, MPI_COMM_WORLD);
  Soap from_self(cfg(), options(), ps_b, MPI_COMM_WORLD);
  Soap fresh(cfg(), options(), ps_c, MPI_COMM_WORLD);  // control: not restored
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

TEST(SoapSharded, StateNamesDoNotDependOnTheRankCount) {
  ParameterSet ps_world, ps_self;
  build(ps_world);
  build(ps_self);
  Soap world(cfg(), options(), ps_world, MPI_COMM_WORLD);
  Soap self(cfg(), options(), ps_self, MPI_COMM_SELF);
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
