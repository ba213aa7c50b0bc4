#pragma once
// AdamW (Loshchilov & Hutter 2019) with PyTorch's decoupled weight decay; defaults in io/run_config.cpp.
#include "io/run_config.hpp"
#include "optim/optimizer.hpp"

namespace quopt {

class AdamW : public Optimizer {
 public:
  AdamW(const OptimizerConfig& cfg, ParameterSet& params);
  std::string name() const override { return "adamw"; }
  void step(ParameterSet& params, double lr) override;
  std::vector<NamedTensor> state() override;

 private:
  OptimizerConfig cfg_;
  std::vector<Tensor> m_, v_;  // first and second moments, one per parameter in ParameterSet order
  std::vector<std::string> names_;
};

}  // namespace quopt
