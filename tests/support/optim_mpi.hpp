#pragma once
// Shared by the sharded-optimizer MPI tests (tests/mpi/test_optim_*_mpi.cpp): a model-like parameter set,
// identical synthetic gradients on every rank, comparison of two parameter sets, and a checkpoint-style
// restore of optimizer state by name.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "core/rng.hpp"
#include "model/params.hpp"
#include "optim/optimizer.hpp"

namespace quopt::testing {

inline int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
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

}  // namespace quopt::testing
