#pragma once
// Which runs of a study go on to PTQ, and at which step: the paper's protocol (arXiv 2509.23500).
//   1. Best run per (size, optimizer, QAT or not): for each learning rate, the mean over seeds of the
//      runs' final validation losses; the learning rate with the lowest mean wins (ties: the smaller lr),
//      and every seed of it is selected. A run whose final loss is not finite (diverged) counts as +inf.
//   2. Where the selected full-precision models are quantized:
//        final        the final weights;
//        common-loss  the paper's: per size, the threshold is the lowest validation loss that every
//                     selected run of that size reaches, max over those runs of their minimum validation
//                     loss; each run is quantized at its first validation point whose loss is <= the
//                     threshold (a snapshot, io/snapshot.hpp, or the final weights). The validation at
//                     step 0 (the untrained model) takes part in neither.
//      A selected QAT run is already quantized by its training: it is evaluated at its final weights.
// Pure functions of the runs' validation curves, so a test can feed them curves directly.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace quopt {

enum class PtqProtocol { Final, CommonLoss };
const char* ptq_protocol_name(PtqProtocol p);  // "final", "common-loss"

struct RunCurve {
  std::int64_t index = 0;  // the run's index in the plan
  std::string size;        // model file (the size key)
  std::string optimizer;
  bool qat = false;
  double lr = 0.0;
  std::int64_t seed = 0;
  std::vector<std::int64_t> val_step;  // validation points in step order, the last one the final step
  std::vector<double> val_loss;
};

struct RunDecision {
  std::int64_t index = 0;
  bool selected = false;
  double lr_mean_loss = 0.0;  // mean final validation loss over the seeds of this run's lr
  std::int64_t lr_seeds = 0;  // how many seeds that mean is over
  double best_lr = 0.0;       // the selected lr of this run's (size, optimizer, qat) group
  double best_mean_loss = 0.0;
  // Selected runs: the step to quantize (full precision) or evaluate (QAT) at, the final step under
  // `final` and for every QAT run; the threshold (common-loss, full precision; NaN otherwise) and the
  // run's validation loss there.
  std::int64_t ptq_step = -1;
  double threshold = std::numeric_limits<double>::quiet_NaN();
  double ptq_val_loss = std::numeric_limits<double>::quiet_NaN();
};

// One decision per run, in the order of `runs`. Throws quopt::Error for a curve without points or
// with mismatched lengths.
std::vector<RunDecision> select_runs(const std::vector<RunCurve>& runs, PtqProtocol protocol);

// The first validation point whose loss is <= threshold (its index into the curve), or -1 if none.
std::int64_t first_crossing(const std::vector<double>& val_loss, double threshold);

}  // namespace quopt
