#pragma once
// A study: the grid of runs a TOML file under inputs/study/ describes (model sizes x optimizers x
// learning rates x seeds, FP and optionally QAT), plus the PTQ schemes and the protocol with which the
// best full-precision run of each (size, optimizer) is quantized (io/study_select.hpp). The plan
// is a pure function of the file: run i is the same run however often it is printed, so a Slurm job
// array maps SLURM_ARRAY_TASK_ID to it. Each run gets a directory with a generated config.toml that
// includes the base run config, the size's model file and the optimizer's file, then overrides lr,
// steps and quantization.
#include <cstdint>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "io/study_select.hpp"

namespace quopt {

struct StudyRun {
  std::int64_t index = 0;
  std::string name;  // e.g. "olmo2-tiny_adamw_lr0.003" (+ "_s<seed>" with several seeds, + "_qat")
  std::string dir;   // absolute run directory
  std::string model_file, optimizer_file, optimizer;
  double lr = 0.0;        // 0: the optimizer file's lr
  std::int64_t seed = 0;  // train.seed; 0: the base config's
  bool qat = false;
  std::vector<std::string> overrides;  // "key=value" applied after the includes
};

struct StudyPlan {
  std::string name, out_dir, base, report_dir;
  std::vector<std::string> ptq_schemes;
  PtqProtocol protocol = PtqProtocol::CommonLoss;
  std::vector<StudyRun> runs;
};

const Schema& study_schema();
// Reads STUDY.toml and expands it. Throws quopt::Error naming the key for a bad study.
StudyPlan make_study_plan(const std::string& path);
// The text of a run's config.toml (include + overrides as TOML tables).
std::string study_run_config_text(const StudyPlan& plan, const StudyRun& run);
// The stages a run goes through: train, ptq, analyze. A QAT run's ptq stage evaluates it as trained (no
// PTQ on top) and its analyze stage analyses its QAT quantization. The ptq and analyze stages of a run
// that the selection does not pick record that and do nothing.
std::vector<std::string> study_stages(const StudyRun& run);

}  // namespace quopt
