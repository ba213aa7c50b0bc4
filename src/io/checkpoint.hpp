#pragma once
// Checkpoints: DIR/checkpoints/step-NNNNNNNN.h5, written by all ranks (write_owned: each tensor by
// the lowest rank holding it), everything a bit-exact resume needs:
//   root attributes  step, config (resolved TOML), world_size, pipeline_stages, format, manifest
//                    (per-dataset checksums), resume_history (config changes accepted on resume, may be
//                    empty), complete = 1 (set last)
//   /weights/<layer>/<param>, /optimizer/<param>/<slot>, /metrics/<curve> (the run file's curves so far)
// Data order, schedule and RNG streams are pure functions of (seed, step), so the step restores them.
// A checkpoint is written as "<name>.tmp" and renamed when complete; the newest K are kept. A checkpoint
// whose weights or optimizer state hold NaN or inf is never written; every load verifies the file
// (complete, known format, manifest checksums, finite weights and state) before using it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/run_file.hpp"
#include "parallel/grid.hpp"

namespace quopt {

class Optimizer;

struct CheckpointMeta {
  std::int64_t step = 0;
  std::string config_toml;
  std::string resume_history;  // one line per resume that changed the config (docs/reliability.md)
};

std::string checkpoint_dir(const std::string& out_dir);

// Collective over grid.world(). `metrics` as held by every rank. Removes all but the newest `keep`.
// Throws (writing nothing) when a weight or optimizer state tensor holds NaN or inf, naming it; on a
// write error (a full disk) the temporary file is removed and the error names the file.
std::string save_checkpoint(const std::string& out_dir, const ProcessGrid& grid, const ParameterSet& params,
                            Optimizer& opt, const RunMetrics& metrics, const CheckpointMeta& meta,
                            std::int64_t keep);

// Not collective: "" when `path` is a usable checkpoint, else why not (not an HDF5 file, not a quopt
// checkpoint, not marked complete, unknown format, a checksum mismatch, non-finite weights or state).
std::string verify_checkpoint(const std::string& path);

// Collective: the newest checkpoint that verifies; skipped ones are reported (rank 0, stderr) with the
// reason. nullopt when there is none.
std::optional<std::string> find_latest_checkpoint(const std::string& out_dir, MPI_Comm comm);

struct LoadedCheckpoint {
  std::int64_t step = 0;
  std::string config_toml;     // the resolved config the checkpoint was written with
  std::string resume_history;  // its record of earlier config changes on resume
};

// Collective: verifies the file (as verify_checkpoint, on rank 0), then restores this rank's parameters,
// its optimizer state and the metrics. Throws quopt::Error naming the file and what does not match (not
// a checkpoint, a damaged file, a different model, a missing state tensor).
LoadedCheckpoint load_checkpoint(const std::string& path, MPI_Comm comm, ParameterSet& params, Optimizer& opt,
                                 RunMetrics& metrics);

}  // namespace quopt
