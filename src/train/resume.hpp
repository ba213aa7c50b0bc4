#pragma once
// How a training run starts: from a checkpoint (--resume auto or PATH) or fresh, and what happens to the
// files already in its directory. Nothing is written before the inputs are checked, and nothing of an
// earlier run is destroyed:
//   - a resume verifies the checkpoint (io/checkpoint.hpp), compares its config with this one
//     (io/resume_config.hpp), and repairs metrics.jsonl: records after the checkpoint's step (they are
//     redone) and torn lines (a crash or a full disk) are dropped, and the log says so;
//   - a fresh start in a directory holding an earlier run's files (io/run_directory.hpp) is refused
//     without --resume, and under --resume auto (no usable checkpoint left) moves them into
//     DIR/previous-N/ first.
#include <mpi.h>

#include <cstdint>
#include <string>

#include "io/run_config.hpp"
#include "io/run_file.hpp"
#include "io/run_lock.hpp"
#include "model/params.hpp"
#include "train/trainer.hpp"

namespace quopt {

class Optimizer;

struct RunStart {
  RunLock lock;                // this process's lock on the run directory, held while the run lasts
  std::int64_t step = 0;       // the step resumed at (0: fresh)
  std::string checkpoint;      // the checkpoint resumed from ("" for a fresh start)
  std::string resume_history;  // the record to carry on into later checkpoints and run.h5
};

// Collective over comm. Locks out_dir (io/run_lock.hpp; the inputs have been checked by then, so a
// rejected run creates nothing), loads the checkpoint (if any) into params, opt and metrics, and
// prepares out_dir.
RunStart start_run(const RunConfig& cfg, const TrainOptions& opts, ParameterSet& params, Optimizer& opt,
                   RunMetrics& metrics, MPI_Comm comm);

}  // namespace quopt
