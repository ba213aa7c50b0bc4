#pragma once
// The training loop on the process grid: each rank runs its pipeline stage over its replica's rows of
// every global batch (micro-batches, 1F1B), gradients are averaged over replicas (bucketed, overlapped
// with the backward), the tied embedding's two copies are combined, then global-norm clipping, the lr
// schedule and the optimizer step. Periodic validation, progress on rank 0, DIR/metrics.jsonl,
// checkpoints (every N steps and when asked to stop), and DIR/run.h5 at the end.
#include <csignal>
#include <cstdint>
#include <string>
#include <vector>

#include "io/run_config.hpp"
#include "model/olmo2.hpp"

namespace quopt {

struct TrainOptions {
  std::string resolved_toml;  // stored in the run file and checkpoints
  std::string out_dir;        // created once the inputs are validated
  std::string resume;         // "" (start fresh), "auto" (newest valid checkpoint, if any), or a path
  // Keys whose change on resume is accepted though they are not in resume_mutable_keys()
  // (--allow-config-change); recorded in the checkpoints and run.h5.
  std::vector<std::string> allow_config_change;
  // The command line, recorded in the run directory's lock for anyone who finds it locked.
  std::string command = "quopt train";
  // Set asynchronously (SIGTERM/SIGUSR1): checkpoint at the end of the current step and stop.
  const volatile std::sig_atomic_t* stop_flag = nullptr;
};

struct TrainSummary {
  std::vector<std::pair<std::int64_t, double>> val_loss;  // (step, loss)
  std::int64_t first_step = 1, last_step = 0;             // steps run by this invocation
  bool interrupted = false;                               // stopped on a signal (checkpoint written)
  std::string checkpoint;                                 // the last checkpoint written, if any
  double seconds = 0.0;
  double tokens_per_s = 0.0;
  double comm_seconds = 0.0;  // MPI time (gradient reduction + pipeline)
  std::string run_file;       // empty when interrupted
};

TrainSummary train(const RunConfig& cfg, const TrainOptions& opts);

}  // namespace quopt
