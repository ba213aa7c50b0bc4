#include "train/resume.hpp"

#include "core/error.hpp"
#include "core/log.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_log.hpp"
#include "io/resume_config.hpp"
#include "io/run_directory.hpp"
#include "parallel/collective_error.hpp"

namespace quopt {

namespace {

// Rank 0 runs f (file-system work) and every rank throws if it failed.
template <class F>
void on_rank0(MPI_Comm comm, F&& f) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string err;
  if (rank == 0) {
    try {
      f();
    } catch (const Error& e) {
      err = e.what();
    }
  }
  throw_if_any(comm, err);
}

}  // namespace

RunStart start_run(const RunConfig& cfg, const TrainOptions& opts, ParameterSet& params, Optimizer& opt,
                   RunMetrics& metrics, MPI_Comm comm) {
  RunStart start;
  start.lock = RunLock::acquire(opts.out_dir, opts.command, comm);  // one writer per run directory
  std::optional<std::string> path;
  if (opts.resume == "auto") {
    path = find_latest_checkpoint(opts.out_dir, comm);
    if (!path) log_info("no usable checkpoint in ", checkpoint_dir(opts.out_dir), ": starting from step 0");
  } else if (!opts.resume.empty()) {
    path = opts.resume;
  }
  if (path) {
    const LoadedCheckpoint ck = load_checkpoint(*path, comm, params, opt, metrics);
    QUOPT_CHECK(ck.step <= cfg.train.steps, *path, " is at step ", ck.step,
                " but train.steps = ", cfg.train.steps, "; raise train.steps to continue it");
    QUOPT_CHECK(cfg.raw, "start_run: the RunConfig carries no resolved Config (raw)");
    const auto changes = check_resume_config(ck.config_toml, *path, *cfg.raw, opts.allow_config_change);
    start.step = ck.step;
    start.checkpoint = *path;
    start.resume_history = ck.resume_history;
    if (!changes.empty()) {
      const std::string line = describe_resume(ck.step, *path, changes);
      start.resume_history += (start.resume_history.empty() ? "" : "\n") + line;
      log_info("config changes accepted: ", line);
    }
    log_info("resumed from ", *path, " at step ", ck.step);
  }

  const std::string jsonl = opts.out_dir + "/metrics.jsonl";
  on_rank0(comm, [&] {
    if (start.step > 0) {
      const MetricsRepair rep = repair_metrics_log(jsonl, start.step);
      if (!rep.torn_lines.empty()) {
        std::string lines;
        for (auto n : rep.torn_lines) lines += (lines.empty() ? "" : ", ") + std::to_string(n);
        log_warn(jsonl, ": dropped ", rep.torn_lines.size(), " incomplete line(s) (line ", lines,
                 ": what a crash or a full disk leaves); ", rep.kept, " records up to step ", start.step,
                 " kept");
      }
      if (rep.dropped_later > 0)
        log_info(jsonl, ": dropped ", rep.dropped_later, " record(s) after step ", start.step,
                 " (those steps run again)");
      return;
    }
    const auto earlier = previous_run_files(opts.out_dir);
    if (earlier.empty()) return;
    if (opts.resume != "auto") {
      fail(opts.out_dir, " already holds a run (", describe_run_files(earlier),
           "); quopt does not overwrite it. Continue that run with --resume auto, write this one elsewhere "
           "with --out DIR, or move those files away yourself");
    }
    const std::string moved = move_previous_run(opts.out_dir);
    log_warn("no usable checkpoint to resume from in ", opts.out_dir, ": moved the earlier run's ",
             describe_run_files(earlier), " to ", moved, " and starting from step 0");
  });
  return start;
}

}  // namespace quopt
