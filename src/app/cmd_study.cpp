// quopt study plan|run STUDY: expands a study file into runs (io/study.hpp) and runs their stages,
// skipping the complete ones. The ptq stage first decides, from the validation curves of every run of
// the run's size (io/study_select.hpp), whether the run is the best of its (size, optimizer) and at
// which step it is quantized; the decision is recorded in its run.h5 under /study, and a run that is
// not selected does nothing more (its analyze stage neither). A QAT run is already quantized: its ptq
// stage evaluates it as trained at its final weights (/eval) and its analyze stage writes /analysis/qat.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/commands.hpp"
#include "app/signals.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "io/h5file.hpp"
#include "io/metrics_read.hpp"
#include "io/run_file_update.hpp"
#include "io/run_lock.hpp"
#include "io/study.hpp"

namespace fs = std::filesystem;

namespace quopt::app {

namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// Collective: rank 0 decides, every rank learns the answer.
bool agree(bool v) {
  int x = v ? 1 : 0;
  MPI_Bcast(&x, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return x != 0;
}

std::string run_file(const StudyRun& run) {
  return run.dir + "/run.h5";
}

// Rank 0: the validation curve of a trained run, from its metrics.jsonl (io/metrics_read.hpp: other
// runs' run.h5 may be being written by their own PTQ stage right now).
RunCurve read_curve(const StudyRun& run) {
  RunCurve c;
  c.index = run.index;
  c.size = run.model_file;
  c.optimizer = run.optimizer;
  c.qat = run.qat;
  c.lr = run.lr;
  c.seed = run.seed;
  const ValCurve v = read_val_curve(run.dir + "/metrics.jsonl");
  c.val_step = v.step;
  c.val_loss = v.loss;
  QUOPT_CHECK(!c.val_loss.empty(), run.dir, "/metrics.jsonl records no validation loss");
  return c;
}

// Rank 0: the decision for `run`, from the curves of every full-precision run of its size (the
// threshold of the common-loss protocol depends on all of them). Throws naming the runs not trained yet.
RunDecision decide(const StudyPlan& plan, const StudyRun& run) {
  std::vector<RunCurve> curves;
  std::string missing;
  for (const auto& r : plan.runs) {
    if (r.model_file != run.model_file || r.qat != run.qat) continue;
    if (!fs::exists(run_file(r))) {
      missing += (missing.empty() ? "" : ", ") + std::to_string(r.index) + " (" + r.name + ")";
      continue;
    }
    curves.push_back(read_curve(r));
  }
  QUOPT_CHECK(
      missing.empty(), "study: run ", run.index, " (", run.name,
      ") cannot be compared with the other runs of its size yet: run(s) ", missing,
      " have no run.h5. Train them first (quopt study run STUDY --stage train), or, if one failed, fix "
      "it or remove its learning rate or seed from the study file");
  for (const auto& d : select_runs(curves, plan.protocol))
    if (d.index == run.index) return d;
  fail("study: no decision for run ", run.index);  // unreachable: run is one of the curves
}

// The decision of rank 0, on every rank.
RunDecision decide_everywhere(const StudyPlan& plan, const StudyRun& run) {
  RunDecision d;
  std::string error;
  if (world_rank() == 0) {
    try {
      d = decide(plan, run);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  int failed = error.empty() ? 0 : 1;
  MPI_Bcast(&failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (failed) fail(world_rank() == 0 ? error : "study: rank 0 could not decide (see its message)");
  int selected = d.selected ? 1 : 0;
  std::int64_t ints[2] = {d.ptq_step, d.lr_seeds};
  double reals[5] = {d.lr_mean_loss, d.best_lr, d.best_mean_loss, d.threshold, d.ptq_val_loss};
  MPI_Bcast(&selected, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Bcast(ints, 2, MPI_INT64_T, 0, MPI_COMM_WORLD);
  MPI_Bcast(reals, 5, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  d.index = run.index;
  d.selected = selected != 0;
  d.ptq_step = ints[0];
  d.lr_seeds = ints[1];
  d.lr_mean_loss = reals[0];
  d.best_lr = reals[1];
  d.best_mean_loss = reals[2];
  d.threshold = reals[3];
  d.ptq_val_loss = reals[4];
  return d;
}

// Where a selected run's weights are taken: the study's protocol; a QAT run at its final weights (it is
// not post-training quantized, so there is no common loss to enter PTQ at).
std::string run_protocol(const StudyPlan& plan, const StudyRun& run) {
  return ptq_protocol_name(run.qat ? PtqProtocol::Final : plan.protocol);
}

// Collective: the decision as attributes of /study in the run file (replacing an earlier one), under
// the run directory's lock and through a copy renamed over run.h5 (io/run_file_update.hpp).
void record_decision(const StudyPlan& plan, const StudyRun& run, const RunDecision& d) {
  const RunLock lock = RunLock::acquire(run.dir, "quopt study run (decision record of " + run.dir + ")",
                                        MPI_COMM_WORLD, false);
  RunFileUpdate update(run_file(run), MPI_COMM_WORLD);
  H5File& f = update.file();
  if (f.exists("study")) f.remove("study");
  f.create_group("study");
  f.set_attr("study", "study", plan.name);
  f.set_attr("study", "group", fs::path(run.model_file).stem().string() + "/" + run.optimizer);
  f.set_attr("study", "lr", run.lr);
  f.set_attr("study", "seed", run.seed);
  f.set_attr("study", "lr_mean_val_loss", d.lr_mean_loss);
  f.set_attr("study", "lr_seeds", d.lr_seeds);
  f.set_attr("study", "best_lr", d.best_lr);
  f.set_attr("study", "best_mean_val_loss", d.best_mean_loss);
  f.set_attr("study", "selected", static_cast<std::int64_t>(d.selected ? 1 : 0));
  f.set_attr("study", "protocol", run_protocol(plan, run));
  f.set_attr("study", "ptq_step", d.ptq_step);
  f.set_attr("study", "ptq_val_loss", d.ptq_val_loss);
  if (std::isfinite(d.threshold)) f.set_attr("study", "threshold", d.threshold);
  update.commit();
}

// Rank 0: the run file has `group`, made at `step` under `protocol` (its attributes).
bool has_group_at(const H5File& f, const std::string& group, std::int64_t step, const std::string& protocol) {
  return f.exists(group) && f.has_attr(group, "step") && f.get_attr_int(group, "step") == step &&
         f.has_attr(group, "protocol") && f.get_attr_string(group, "protocol") == protocol;
}

// Rank 0: the recorded decision matches `d` and, for a selected run, `stage` is done at its step.
bool stage_done_for(const StudyPlan& plan, const StudyRun& run, const std::string& stage,
                    const RunDecision& d) {
  if (!fs::exists(run_file(run))) return false;
  try {
    H5File f = H5File::open_read(run_file(run), MPI_COMM_SELF);
    if (!f.exists("study") || f.get_attr_int("study", "selected") != (d.selected ? 1 : 0) ||
        f.get_attr_string("study", "protocol") != run_protocol(plan, run) ||
        f.get_attr_int("study", "ptq_step") != d.ptq_step)
      return false;
    if (!d.selected) return true;
    if (run.qat)  // evaluated as trained (/eval at its final step), analysed as trained (/analysis/qat)
      return stage == "ptq" ? has_group_at(f, "eval", d.ptq_step, run_protocol(plan, run))
                            : f.exists("analysis/qat");
    for (const auto& s : plan.ptq_schemes) {
      const std::string g = (stage == "ptq" ? "quant/" : "analysis/") + s;
      if (!has_group_at(f, g, d.ptq_step, run_protocol(plan, run))) return false;
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

void write_run_config(const StudyPlan& plan, const StudyRun& run) {
  if (world_rank() == 0) {
    fs::create_directories(run.dir);
    const std::string cfg = run.dir + "/config.toml";
    std::ofstream(cfg + ".tmp") << study_run_config_text(plan, run);
    fs::rename(cfg + ".tmp", cfg);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

int run_stage(const StudyPlan& plan, const StudyRun& run, const std::string& stage) {
  const std::string tag = "study: run " + std::to_string(run.index) + " (" + run.name + ") " + stage;
  CommonArgs a;
  a.config = run.dir + "/config.toml";
  a.args = {"study", "run", "(stage " + stage + " of " + run.dir + ")"};
  // A signal checkpoints training; any other stage ends on it as usual (app/signals.hpp).
  if (stage == "train")
    install_stop_handlers();
  else
    release_stop_handlers();
  if (stage == "train") {
    if (agree(world_rank() == 0 && fs::exists(run_file(run)))) {
      log_info(tag, ": already complete, skipped");
      return 0;
    }
    write_run_config(plan, run);
    log_info(tag);
    return cmd_train(a, "auto");
  }
  QUOPT_CHECK(stage == "ptq" || stage == "analyze", "unknown stage '", stage,
              "': use train, ptq, analyze or all");
  const RunDecision d = decide_everywhere(plan, run);
  if (agree(world_rank() == 0 && stage_done_for(plan, run, stage, d))) {
    log_info(tag, ": already complete, skipped");
    return 0;
  }
  char lrs[96];
  std::snprintf(lrs, sizeof lrs, "lr %.3g, mean final val loss %.4f over %lld seed(s); best lr %.3g (%.4f)",
                run.lr, d.lr_mean_loss, static_cast<long long>(d.lr_seeds), d.best_lr, d.best_mean_loss);
  if (!d.selected) {
    if (stage == "ptq") record_decision(plan, run, d);
    log_info(tag, ": not selected (", lrs, "), nothing to do");
    return 0;
  }
  write_run_config(plan, run);
  if (stage == "analyze") {
    log_info(tag);
    // A QAT run is analysed as trained (/analysis/qat); PTQ schemes do not apply to it.
    return cmd_analyze(a, run.dir, run.qat ? std::vector<std::string>{} : plan.ptq_schemes);
  }
  WeightsChoice at;
  at.step = d.ptq_step;
  at.protocol = run_protocol(plan, run);
  at.threshold = d.threshold;
  int rc = 0;
  if (run.qat) {  // already quantized by its training: evaluated as trained, at its final weights
    log_info(tag, ": selected (", lrs, "); a QAT run, evaluated as trained at its final step ", d.ptq_step);
    rc = cmd_eval(a, run.dir, "", "", at);
  } else {
    log_info(tag, ": selected (", lrs, "); quantized at step ", d.ptq_step, " (", at.protocol,
             std::isfinite(d.threshold) ? ", threshold " + std::to_string(d.threshold) : std::string(),
             ", validation loss there ", d.ptq_val_loss, ")");
    rc = cmd_ptq(a, run.dir, plan.ptq_schemes, at);
  }
  if (rc == 0) record_decision(plan, run, d);  // last: the record marks the stage complete
  return rc;
}

}  // namespace

int cmd_study_plan(const std::string& study, bool count_only) {
  const StudyPlan plan = make_study_plan(study);
  if (count_only) {
    log_info(plan.runs.size());
    return 0;
  }
  log_info(
      "# study ", plan.name, ": ", plan.runs.size(),
      " runs; ptq: the best lr per (size, optimizer) by mean final validation loss over seeds, quantized "
      "at the ",
      plan.protocol == PtqProtocol::Final ? "final weights" : "common loss of its size",
      " (study.ptq_protocol = ", ptq_protocol_name(plan.protocol), ")");
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
  // Stage by stage: selection compares trained runs, so every run trains before any is quantized.
  for (const char* s : {"train", "ptq", "analyze"}) {
    if (stage != "all" && stage != s) continue;
    for (const auto& run : plan.runs) {
      if (index >= 0 && run.index != index) continue;
      const auto stages = study_stages(run);
      if (std::find(stages.begin(), stages.end(), s) == stages.end()) continue;
      const int rc = run_stage(plan, run, s);
      if (rc != 0) return rc;
    }
  }
  if (index < 0 && stage == "all")
    log_info("study: all ", plan.runs.size(), " runs complete in ", plan.out_dir);
  return 0;
}

}  // namespace quopt::app
