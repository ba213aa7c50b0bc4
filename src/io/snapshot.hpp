#pragma once
// Weight snapshots: DIR/snapshots/step-NNNNNNNN.h5, weight-only copies of a run at validation points,
// so that PTQ, eval and analysis can take the model at a chosen step (the paper's common-loss
// protocol quantizes each model at the first validation point where its loss reaches a threshold).
//   root attributes  step, val_loss (the trainer's validation loss at that step), tokens, config
//                    (resolved TOML, the same text as run.h5's), model_name, created_by
//   /weights/<layer>/<param>   the layout of run.h5's /weights (io/run_file.hpp)
// Written collectively as "<name>.tmp" and renamed, so a crash never leaves a snapshot that looks
// complete. Which validation points get one: see snapshot_wanted.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/run_config.hpp"
#include "model/params.hpp"

namespace quopt {

std::string snapshot_dir(const std::string& run_dir);
std::string snapshot_path(const std::string& run_dir, std::int64_t step);

// Whether the trainer keeps a snapshot at the validation it just ran at `step` (val_loss: every
// validation loss so far, this one last): snapshots enabled, `step` is not the last step (run.h5 holds
// those weights), step >= after_fraction * total_steps, and this loss is strictly below every earlier
// one. Only such a point can be the first validation point at or below a threshold that the run
// reaches, so no other snapshot can ever be asked for.
bool snapshot_wanted(const SnapshotConfig& c, std::int64_t step, std::int64_t total_steps,
                     const std::vector<double>& val_loss);

struct SnapshotInfo {
  std::int64_t step = 0;
  double val_loss = 0.0;
  std::int64_t tokens = 0;
  std::string config_toml;
};

// Collective over comm: every rank passes the parameters it holds (its pipeline stage).
void write_snapshot(const std::string& run_dir, MPI_Comm comm, const ModelConfig& model,
                    const ParameterSet& params, const SnapshotInfo& info);

// Steps of the complete snapshots in run_dir (ascending); .tmp leftovers are ignored.
std::vector<std::int64_t> list_snapshots(const std::string& run_dir);

// Where a run's weights at `step` are: run.h5 itself for the final step (or step < 0: "the final
// weights"), else the snapshot of that step. Checks that the file exists, that a snapshot belongs to
// this run (its config attribute equals run.h5's) and says what to do otherwise.
struct WeightsSource {
  std::string file;       // run.h5 or snapshots/step-NNNNNNNN.h5
  std::int64_t step = 0;  // the step those weights are from (-1: a run without training steps, imported)
  std::int64_t final_step = 0;
  bool is_final = true;
  std::int64_t tokens = 0;      // training tokens seen by then
  double train_val_loss = 0.0;  // the trainer's validation loss at `step` (NaN when not validated there)
};
WeightsSource locate_weights(const std::string& run_dir, std::int64_t step, MPI_Comm comm);

}  // namespace quopt
