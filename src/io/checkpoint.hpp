#pragma once
// Checkpoints: DIR/checkpoints/step-NNNNNNNN.h5, written by all ranks (write_owned: each tensor by
// the lowest rank holding it), everything a bit-exact resume needs:
//   root attributes  step, config (resolved TOML), world_size, pipeline_stages, format, manifest
//                    (per-dataset checksums), complete = 1 (set last)
//   /weights/<layer>/<param>, /optimizer/<param>/<slot>, /metrics/<curve> (the run file's curves so far)
// Data order, schedule and RNG streams are pure functions of (seed, step), so the step restores them.
// A checkpoint is written as "<name>.tmp" and renamed when complete; the newest K are kept.
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
};

std::string checkpoint_dir(const std::string& out_dir);

// Collective over grid.world(). `metrics` as held by every rank. Removes all but the newest `keep`.
std::string save_checkpoint(const std::string& out_dir, const ProcessGrid& grid, const ParameterSet& params,
                            Optimizer& opt, const RunMetrics& metrics, const CheckpointMeta& meta,
                            std::int64_t keep);

// Collective: the newest checkpoint that opens, is marked complete and matches its manifest; skipped
// ones are reported (rank 0, stderr) with the reason. nullopt when there is none.
std::optional<std::string> find_latest_checkpoint(const std::string& out_dir, MPI_Comm comm);

// Collective: restores this rank's parameters, its optimizer state and the metrics; returns the step.
// Throws quopt::Error naming what does not match (a different model, a missing state tensor).
std::int64_t load_checkpoint(const std::string& path, MPI_Comm comm, ParameterSet& params, Optimizer& opt,
                             RunMetrics& metrics, std::string* config_toml = nullptr);

}  // namespace quopt
