#pragma once
// The training loop: micro-batches with gradient accumulation, global-norm clipping, the lr schedule,
// the optimizer step, periodic validation, progress on rank 0, DIR/metrics.jsonl and DIR/run.h5.
#include <cstdint>
#include <string>
#include <vector>

#include "io/run_config.hpp"
#include "model/olmo2.hpp"

namespace quopt {

struct TrainSummary {
  std::vector<double> train_loss;                          // one per step
  std::vector<std::pair<std::int64_t, double>> val_loss;   // (step, loss)
  double seconds = 0.0;
  double tokens_per_s = 0.0;
  std::string run_file;
};

class TokenShard;

// Mean validation loss (cross-entropy incl. z-loss) of `model` over `batches` sequential batches of
// `rows` sequences from `shard`.
double validation_loss(const Olmo2& model, const TokenShard& shard, std::int64_t batches, std::int64_t rows);

// Trains as the config says; `resolved_toml` is the fully resolved config text stored in the run file.
// Creates `out_dir` once the inputs are validated. Returns what was measured.
TrainSummary train(const RunConfig& cfg, const std::string& resolved_toml, const std::string& out_dir);

}  // namespace quopt
