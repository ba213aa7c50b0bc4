#pragma once
// Divergence handling in the training loop. Every step's global loss and gradient norm are checked
// BEFORE the update: a non-finite one (NaN or inf) is never applied to the weights. The step is then
// skipped (its batch is not trained on; up to train.max_nonfinite_skips such steps per run) or the run
// stops with an error saying what went wrong and what to change. When the weights themselves are no
// longer finite (an optimizer's update produced NaN/inf from a finite gradient), skipping cannot help:
// the run stops naming the tensor. Checkpoints are never written with non-finite weights or state
// (io/checkpoint.cpp), so --resume auto always finds the last finite one.
#include <cstdint>
#include <string>

#include "io/run_config.hpp"
#include "model/params.hpp"

namespace quopt {

class DivergenceGuard {
 public:
  DivergenceGuard(const TrainConfig& train, const OptimizerConfig& opt);

  // True when (loss, grad_norm), both global (the same on every rank), are finite: apply the update.
  // False: skip this step's update. Throws quopt::Error when the run must stop instead. `weights_bad`
  // describes this run's non-finite weights ("" when all are finite), as agreed over all ranks; it is
  // only consulted for non-finite steps.
  bool admit(std::int64_t step, double loss, double grad_norm, const std::string& weights_bad);

  std::int64_t skipped() const { return skipped_; }

  // What to change, true to the config: lower the learning rate, and tighten clipping when it is on
  // (enable it when it is off).
  std::string advice() const;

 private:
  std::int64_t max_skips_;
  double lr_, grad_clip_;
  std::int64_t skipped_ = 0;
};

}  // namespace quopt
