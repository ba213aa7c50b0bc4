#pragma once
// Optimizer interface: one update of every parameter from its accumulated gradient. State is exposed
// as named tensors plus a step counter so checkpoints can save and restore any optimizer bit-exactly;
// sharded optimizers list only the state their rank owns (names are independent of the rank count,
// so a checkpoint resumes on a different number of ranks).
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "model/params.hpp"

namespace quopt {

struct OptimizerConfig;
class Config;

struct OptimizerContext {
  MPI_Comm data = MPI_COMM_SELF;   // this stage's data-parallel group: matrix work is sharded over it
  std::uint64_t seed = 0;          // for optimizers that draw random numbers (PSGD)
  const Config* config = nullptr;  // the resolved config: optimizer-specific keys optimizer.<name>.*
};

// What an optimizer reports about itself (cumulative since construction, this rank).
struct OptimizerReport {
  double balance = 1.0;           // max / mean of the assigned work cost in the data-parallel group
  std::int64_t state_bytes = 0;   // optimizer and preconditioner state held by this rank
  std::int64_t failed_roots = 0;  // root / eigendecomposition computations that failed (kept the old one)
  double precond_seconds = 0.0;   // preconditioner statistics updates
  double root_seconds = 0.0;      // root inverses, eigendecompositions, QR, Newton-Schulz
  double comm_seconds = 0.0;      // all-gathers of sharded results
  double update_seconds = 0.0;    // everything else in step()
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // Applies one update with learning rate lr (the schedule already applied). Every rank of the
  // data-parallel group calls it with the same gradients.
  virtual void step(ParameterSet& params, double lr) = 0;
  // Every state tensor this rank holds, named "<parameter or block name>/<slot>"; restoring = copying
  // into these tensors.
  virtual std::vector<NamedTensor> state() = 0;
  // stats_ with the bytes of state() filled in.
  OptimizerReport report() const;
  std::int64_t steps_taken() const { return steps_; }
  void set_steps_taken(std::int64_t s) { steps_ = s; }

 protected:
  std::int64_t steps_ = 0;
  // What an optimizer accounts for as it goes: its shard balance (set with its plan), failed
  // decompositions and seconds per phase of step(). state_bytes is filled in by report().
  OptimizerReport stats_;
};

class Schema;
// Adds every optimizer's own keys (optimizer.<name>.*) to the run schema.
void add_optimizer_keys(Schema& s);

// Builds the optimizer named by cfg.name for these parameters.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, ParameterSet& params,
                                          const OptimizerContext& ctx = {});
// Whether cfg.decay_roles names this parameter's role.
bool decays(const OptimizerConfig& cfg, ParamRole role);
// params' entries in order, after checking that they are the parameters (names and shapes) the optimizer
// `who` was built for; throws an Error naming the first mismatch otherwise.
std::vector<Parameter*> checked_params(const char* who, ParameterSet& params,
                                       const std::vector<std::string>& names,
                                       const std::vector<Shape>& shapes);
// Total bytes of a list of state tensors.
std::int64_t state_bytes(const std::vector<NamedTensor>& state);

}  // namespace quopt
