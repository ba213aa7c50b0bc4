#pragma once
// Quantization robustness tracked during training ([track], docs/analysis.md "Robustness during
// training"): every track.every optimizer steps (and at step 0 and the last step) the current weights
// are copied into two whole models, one of them quantized with track.scheme (PTQ as `quopt ptq` does it;
// a QAT run instead runs its own QAT quantizer against the weights computed exactly), and measured on a
// fixed calibration batch: the loss of both and its increase, R_L, both MMR variants and the kurtosis
// (analysis/model_analysis.hpp without the per-weight metrics). Each measurement is one line of
// metrics.jsonl and the robustness_* curves of /metrics in run.h5.
#include <cstdint>
#include <string>

#include "io/run_config.hpp"
#include "io/run_file.hpp"
#include "io/token_shard.hpp"
#include "model/olmo2.hpp"
#include "parallel/grid.hpp"
#include "quant/scheme.hpp"

namespace quopt {

struct RobustnessRecord {
  std::int64_t step = 0, tokens = 0;  // optimizer step and training tokens seen
  std::string scheme;                 // the PTQ scheme, or "qat" (a QAT run's own quantization)
  double loss_fp = 0.0, loss_quant = 0.0, loss_increase = 0.0;  // mean loss per calibration token
  double R_L = 0.0;
  double mmr_mean = 0.0, mmr_max = 0.0;                // the authors' max-to-median, over layers
  double mmr_tomean_mean = 0.0, mmr_tomean_max = 0.0;  // max-to-mean
  double kurtosis_mean = 0.0, kurtosis_max = 0.0;
  double seconds = 0.0;  // wall time of this measurement
};

class RobustnessTracker {
 public:
  // Checks [track] against the run before anything is written (throws quopt::Error naming the key):
  // the scheme parses and fits the model, the batch fits the training shard, and every rank holds the
  // whole model (parallel.pipeline_stages = 1: the tracker does not gather pipeline stages). Inactive
  // when track.every = 0. `train` must outlive the tracker.
  RobustnessTracker(const RunConfig& cfg, const ProcessGrid& grid, const TokenShard& train);
  bool active() const { return every_ > 0; }
  // Step 0, every track.every steps, and the last step (train.steps).
  bool due(std::int64_t step) const;
  // Collective over the grid's world: every rank passes its (whole, identical) training model and gets
  // the same record; the calibration sequences and the analysis chunks are spread over the ranks.
  RobustnessRecord measure(const Olmo2& model, std::int64_t step, std::int64_t tokens);
  double total_seconds() const { return total_seconds_; }

 private:
  const RunConfig& cfg_;
  const ProcessGrid& grid_;
  std::int64_t every_ = 0;
  bool qat_ = false;
  QuantScheme scheme_;
  Tensor tokens_, targets_;  // the fixed calibration batch
  double total_seconds_ = 0.0;
};

// The metrics.jsonl line of a record: {"step":..,"tokens":..,"robustness":{...}} (NaN as null).
std::string robustness_json(const RobustnessRecord& r);
// Appends the record to the robustness_* curves of m.extra (robustness_step, robustness_tokens,
// robustness_loss_fp, robustness_loss_quant, robustness_loss_increase, robustness_R_L,
// robustness_mmr_mean, robustness_mmr_max, robustness_mmr_tomean_mean, robustness_mmr_tomean_max,
// robustness_kurtosis_mean, robustness_kurtosis_max, robustness_seconds).
void append_robustness(RunMetrics& m, const RobustnessRecord& r);
// One log line.
std::string describe(const RobustnessRecord& r);

}  // namespace quopt
