#pragma once
// Optimizer interface: one update of every parameter from its accumulated gradient. State is exposed
// as named tensors plus a step counter so checkpoints can save and restore any optimizer bit-exactly.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "model/params.hpp"

namespace quopt {

struct OptimizerConfig;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // Applies one update with learning rate lr (the schedule already applied).
  virtual void step(ParameterSet& params, double lr) = 0;
  // Every state tensor, named "<parameter name>/<slot>"; restoring = copying into these tensors.
  virtual std::vector<NamedTensor> state() = 0;
  std::int64_t steps_taken() const { return steps_; }
  void set_steps_taken(std::int64_t s) { steps_ = s; }

 protected:
  std::int64_t steps_ = 0;
};

// Builds the optimizer named by cfg.name for these parameters.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, ParameterSet& params);
// Whether cfg.decay_roles names this parameter's role.
bool decays(const OptimizerConfig& cfg, ParamRole role);

}  // namespace quopt
