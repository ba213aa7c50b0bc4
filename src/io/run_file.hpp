#pragma once
// DIR/run.h5: the self-describing record of one run (layout in docs/run-file.md).
//   /                 attributes: quopt_version, git_revision, seed, world_size, config (resolved TOML),
//                     model_name, parameters, non_embedding_parameters, created_by
//   /weights/<layer>/<param>   every parameter, attributes role and dims
//   /metrics/         train_step, train_loss, lr, grad_norm, tokens; val_step, val_loss
// Later commands (ptq, analyze) add /quant/ and /analysis/ to the same file.
#include <mpi.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/h5file.hpp"
#include "model/config.hpp"
#include "model/olmo2.hpp"
#include "model/params.hpp"

namespace quopt {

struct RunMetrics {
  std::vector<std::int64_t> step, tokens;
  std::vector<double> loss, lr, grad_norm;
  std::vector<std::int64_t> val_step;
  std::vector<double> val_loss;
  // Further curves, /metrics/<name> (the robustness tracking's robustness_*: train/robustness.hpp).
  std::map<std::string, std::vector<double>> extra;
};

// The curves as f64 tensors named "metrics/<curve>" (the run file's and the checkpoints' layout), and
// their inverse.
std::vector<NamedTensor> metrics_tensors(const RunMetrics& m);
void read_metrics(const H5File& f, RunMetrics& m);

struct RunInfo {
  std::string config_toml;
  std::string resume_history;  // config changes accepted on resume (docs/reliability.md); "" for none
  std::uint64_t seed = 0;
  int world_size = 1;
  ModelConfig model;
};

// Writes the run file collectively: to "<path>.tmp", then renamed into place, so an interrupted
// write never leaves a run.h5 that looks complete.
void write_run_file(const std::string& path, MPI_Comm comm, const RunInfo& info, const ParameterSet& params,
                    const RunMetrics& metrics);

// Meaning of a parameter's dimensions, stored as the attribute "dims".
std::string param_dims(ParamRole role);

// Collective: writes every parameter of the model under /weights/<layer>/<param>; each rank passes the
// parameters it holds (its pipeline stage), each tensor is written once (io/owned_tensors).
void write_weights(H5File& f, MPI_Comm comm, const ModelConfig& model, const ParameterSet& params,
                   const std::string& root = "weights");
// Throws unless f looks like a quopt run file (a 'config' attribute and a /weights group).
void require_run_file(const H5File& f);
// Rank 0 renames a completed temporary file `from` over `to`; every rank of comm then throws the same
// error if that failed (the write path of run.h5 and of its updates).
void rename_completed(MPI_Comm comm, const std::string& from, const std::string& to);
// Reads every parameter of `params` from /weights (shapes must match, values must be finite); a missing
// or non-finite one is an error that names it and the file.
void read_weights(const H5File& f, ParameterSet& params, const std::string& root = "weights");

}  // namespace quopt
