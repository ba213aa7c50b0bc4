#include <mpi.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/commands.hpp"
#include "app/signals.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "io/h5file.hpp"
#include "io/study.hpp"

namespace fs = std::filesystem;

namespace quopt::app {

namespace {

bool run_file_has(const std::string& run_h5, const std::string& group) {
  if (!fs::exists(run_h5)) return false;
  try {
    H5File f = H5File::open_read(run_h5, MPI_COMM_SELF);
    return f.exists(group);
  } catch (const Error&) {
    return false;
  }
}

// Collective: rank 0 decides, every rank learns the answer.
bool agree(bool v) {
  int x = v ? 1 : 0;
  MPI_Bcast(&x, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return x != 0;
}

bool stage_done(const StudyPlan& plan, const StudyRun& run, const std::string& stage) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  bool done = true;
  if (rank == 0) {
    const std::string h5 = run.dir + "/run.h5";
    if (stage == "train") {
      done = fs::exists(h5);
    } else {
      for (const auto& s : plan.ptq_schemes)
        done = done && run_file_has(h5, (stage == "ptq" ? "quant/" : "analysis/") + s);
    }
  }
  return agree(done);
}

int run_stage(const StudyPlan& plan, const StudyRun& run, const std::string& stage) {
  if (stage_done(plan, run, stage)) {
    log_info("study: run ", run.index, " (", run.name, ") ", stage, ": already complete, skipped");
    return 0;
  }
  const std::string cfg = run.dir + "/config.toml";
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    fs::create_directories(run.dir);
    const std::string text = study_run_config_text(plan, run);
    std::ofstream(cfg + ".tmp") << text;
    fs::rename(cfg + ".tmp", cfg);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  log_info("study: run ", run.index, " (", run.name, ") ", stage);
  CommonArgs a;
  a.config = cfg;
  a.args = {"study", "run", "(stage " + stage + " of " + run.dir + ")"};
  // A signal checkpoints training; any other stage ends on it as usual (app/signals.hpp).
  if (stage == "train")
    install_stop_handlers();
  else
    release_stop_handlers();
  if (stage == "train") return cmd_train(a, "auto");
  if (stage == "ptq") return cmd_ptq(a, run.dir, plan.ptq_schemes);
  if (stage == "analyze") return cmd_analyze(a, run.dir, plan.ptq_schemes);
  fail("unknown stage '", stage, "': use train, ptq, analyze or all");
}

}  // namespace

int cmd_study_plan(const std::string& study, bool count_only) {
  const StudyPlan plan = make_study_plan(study);
  if (count_only) {
    log_info(plan.runs.size());
    return 0;
  }
  for (const auto& r : plan.runs) {
    std::string stages;
    for (const auto& s : study_stages(r)) stages += (stages.empty() ? "" : ",") + s;
    log_info(r.index, "\t", r.dir, "\t", stages);
  }
  return 0;
}

int cmd_study_run(const std::string& study, std::int64_t index, const std::string& stage) {
  const StudyPlan plan = make_study_plan(study);
  QUOPT_CHECK(index < static_cast<std::int64_t>(plan.runs.size()), "--index ", index,
              " is out of range: ", study, " has ", plan.runs.size(), " runs (0..",
              static_cast<std::int64_t>(plan.runs.size()) - 1, ")");
  QUOPT_CHECK(stage == "all" || stage == "train" || stage == "ptq" || stage == "analyze", "--stage '", stage,
              "' is not one of train, ptq, analyze, all");
  for (const auto& run : plan.runs) {
    if (index >= 0 && run.index != index) continue;
    for (const auto& s : study_stages(run)) {
      if (stage != "all" && s != stage) continue;
      const int rc = run_stage(plan, run, s);
      if (rc != 0) return rc;
    }
  }
  if (index < 0 && stage == "all")
    log_info("study: all ", plan.runs.size(), " runs complete in ", plan.out_dir);
  return 0;
}

}  // namespace quopt::app
