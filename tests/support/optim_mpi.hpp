#pragma once
// Shared by the sharded-optimizer MPI tests (tests/mpi/test_optim_*_mpi.cpp): a model-like parameter set,
// identical synthetic gradients on every rank, comparison of two parameter sets, a checkpoint-style
// restore of optimizer state by name, and ShardedPair: one optimizer sharded over MPI_COMM_WORLD beside
// an unsharded copy on MPI_COMM_SELF, stepped on the same gradients, with the checks every sharded
// optimizer must pass (bitwise agreement, resume from either copy, rank-independent state names).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.hpp"
#include "model/params.hpp"
#include "optim/optimizer.hpp"

namespace quopt::testing {

inline int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// True on every rank only if it is true on every rank.
inline bool all_ranks(bool ok) {
  int v = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return v == 1;
}

// A model-like parameter set: an embedding [40, 16], `blocks` blocks of hidden matrices (attn_q [16, 16],
// attn_k [8, attn_k_in], mlp_up [mlp, 16], mlp_down [16, mlp]) with a gain each, and a final gain.
inline void build_params(ParameterSet& ps, int blocks, std::int64_t attn_k_in, std::int64_t mlp) {
  ps.add("embed/weight", ParamRole::Embedding, {40, 16}, DType::F32);
  for (int b = 0; b < blocks; ++b) {
    const std::string n = "block.0" + std::to_string(b) + "/";
    ps.add(n + "attn_q", ParamRole::Hidden, {16, 16}, DType::F32);
    ps.add(n + "attn_k", ParamRole::Hidden, {8, attn_k_in}, DType::F32);
    ps.add(n + "attn_norm", ParamRole::Gain, {16}, DType::F32);
    ps.add(n + "mlp_up", ParamRole::Hidden, {mlp, 16}, DType::F32);
    ps.add(n + "mlp_down", ParamRole::Hidden, {16, mlp}, DType::F32);
  }
  ps.add("final_norm/weight", ParamRole::Gain, {16}, DType::F32);
  Rng rng(17, 3);
  for (auto& p : ps.all())
    for (std::int64_t i = 0; i < p.value.numel(); ++i)
      p.value.data<float>()[i] = static_cast<float>(p.role == ParamRole::Gain ? 1.0 : 0.02 * rng.normal());
}

// The same gradients on every rank for step t.
inline void gradients(ParameterSet& ps, int t) {
  for (auto& p : ps.all()) {
    Rng rng(99, hash_name(p.name) + static_cast<std::uint64_t>(t));
    for (std::int64_t i = 0; i < p.grad.numel(); ++i)
      p.grad.data<float>()[i] = static_cast<float>(rng.normal());
  }
}

// Largest relative difference and the number of elements that differ at all.
inline std::pair<double, std::int64_t> compare(const ParameterSet& a, const ParameterSet& b) {
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

// Restores `to` from `from` by name, as a checkpoint reader does: every tensor `to` holds must exist
// in `from` with the same shape.
inline bool restore(Optimizer& to, Optimizer& from) {
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

// Every rank holds rank 0's values, bitwise.
inline bool same_on_every_rank(const ParameterSet& ps) {
  bool same = true;
  for (const auto& p : ps.all()) {
    std::vector<float> v(p.value.data<float>(), p.value.data<float>() + p.value.numel());
    MPI_Bcast(v.data(), static_cast<int>(v.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
    same = same && std::memcmp(v.data(), p.value.data<float>(), v.size() * sizeof(float)) == 0;
  }
  return all_ranks(same);
}

inline void copy_values(ParameterSet& to, const ParameterSet& from) {
  for (std::size_t k = 0; k < to.all().size(); ++k) to.all()[k].value.copy_from(from.all()[k].value);
}

// One optimizer sharded over MPI_COMM_WORLD (`world`) beside an unsharded copy on MPI_COMM_SELF (`self`),
// each on its own parameter set built by `build`. `make(params, comm)` constructs the optimizer.
template <class Opt>
class ShardedPair {
 public:
  using Build = std::function<void(ParameterSet&)>;
  using Make = std::function<std::unique_ptr<Opt>(ParameterSet&, MPI_Comm)>;

  ShardedPair(Build build, Make make) : build_(std::move(build)), make_(std::move(make)) {
    build_(world_params);
    build_(self_params);
    world = make_(world_params, MPI_COMM_WORLD);
    self = make_(self_params, MPI_COMM_SELF);
  }
  ShardedPair(const ShardedPair&) = delete;
  ShardedPair& operator=(const ShardedPair&) = delete;

  // Steps both copies `steps` times on the same gradients, at lr0 * (1 - t / 40) (a decaying schedule),
  // and expects them to agree bitwise on every rank.
  void step_and_expect_bitwise(int steps, double lr0) {
    for (int t = 0; t < steps; ++t) {
      const double lr = lr0 * (1.0 - t / 40.0);
      gradients(world_params, t);
      gradients(self_params, t);
      world->step(world_params, lr);
      self->step(self_params, lr);
    }
    const auto [rel, differ] = compare(world_params, self_params);
    EXPECT_TRUE(all_ranks(rel <= 1e-5)) << "relative difference " << rel;
    EXPECT_TRUE(all_ranks(differ == 0)) << differ << " elements differ (expected bitwise agreement)";
  }

  // Checkpoint round trip: a fresh sharded optimizer restored from `world` (same ranks) and another
  // restored from `self` (a different number of ranks) continue exactly as `world` for 3 steps at `lr`;
  // a control with the same parameters and a fresh (unrestored) optimizer ends elsewhere.
  void expect_resume_continues(double lr) {
    ParameterSet ps_a, ps_b, ps_c;
    for (ParameterSet* ps : {&ps_a, &ps_b, &ps_c}) {
      build_(*ps);
      copy_values(*ps, world_params);
    }
    auto from_world = make_(ps_a, MPI_COMM_WORLD);
    auto from_self = make_(ps_b, MPI_COMM_WORLD);
    auto fresh = make_(ps_c, MPI_COMM_WORLD);
    ASSERT_TRUE(all_ranks(restore(*from_world, *world)));
    ASSERT_TRUE(all_ranks(restore(*from_self, *self)));
    EXPECT_EQ(from_world->steps_taken(), world->steps_taken());
    const int t0 = static_cast<int>(world->steps_taken());
    for (int t = t0; t < t0 + 3; ++t) {
      for (ParameterSet* ps : {&world_params, &ps_a, &ps_b, &ps_c}) gradients(*ps, t);
      world->step(world_params, lr);
      from_world->step(ps_a, lr);
      from_self->step(ps_b, lr);
      fresh->step(ps_c, lr);
    }
    EXPECT_TRUE(all_ranks(compare(ps_a, world_params).second == 0));
    EXPECT_TRUE(all_ranks(compare(ps_b, world_params).second == 0));
    EXPECT_TRUE(all_ranks(compare(ps_c, world_params).first > 1e-3));
  }

  // This rank's state names are a subset of the unsharded names, and the ranks' counts add up to all of
  // them: every state tensor has one owner and its name does not depend on the rank count.
  void expect_state_names_partitioned() {
    std::set<std::string> all_self;
    for (auto& s : self->state()) all_self.insert(s.name);
    bool subset = true;
    long count = 0;
    for (auto& s : world->state()) {
      subset = subset && all_self.count(s.name) == 1;
      ++count;
    }
    EXPECT_TRUE(all_ranks(subset));
    MPI_Allreduce(MPI_IN_PLACE, &count, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    EXPECT_EQ(count, static_cast<long>(all_self.size()));
  }

  ParameterSet world_params, self_params;
  std::unique_ptr<Opt> world, self;

 private:
  Build build_;
  Make make_;
};

}  // namespace quopt::testing
