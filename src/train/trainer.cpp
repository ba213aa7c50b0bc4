#include "train/trainer.hpp"

#include <mpi.h>

#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "core/finite.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "io/batch_loader.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_log.hpp"
#include "io/run_file.hpp"
#include "io/snapshot.hpp"
#include "io/token_shard.hpp"
#include "kernels/ops.hpp"
#include "optim/optimizer.hpp"
#include "parallel/collective_error.hpp"
#include "parallel/grad_sync.hpp"
#include "parallel/grid.hpp"
#include "parallel/pipeline.hpp"
#include "parallel/watchdog.hpp"
#include "quant/qat.hpp"
#include "train/device.hpp"
#include "train/divergence.hpp"
#include "train/resume.hpp"
#include "train/robustness.hpp"
#include "train/schedule.hpp"

namespace quopt {

namespace {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<long long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  return buf;
}

void check_shard_vocab(const TokenShard& shard, const ModelConfig& m, const char* key) {
  QUOPT_CHECK(shard.vocab_size() <= static_cast<std::uint64_t>(m.vocab_size), "data.", key, " = ",
              shard.path(), " was tokenized with a vocabulary of ", shard.vocab_size(),
              " but model.vocab_size = ", m.vocab_size, "; set model.vocab_size >= ", shard.vocab_size(),
              " or re-tokenize");
}

double allreduce_sum(double v, MPI_Comm c) {
  double out = 0.0;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, c);
  return out;
}

// Collective: a signal (SIGTERM/SIGUSR1) reached any rank.
bool stop_requested(const TrainOptions& opts, const ProcessGrid& grid) {
  int stop = opts.stop_flag && *opts.stop_flag ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, grid.world());
  return stop != 0;
}

// Collective: the first non-finite weight tensor of any rank ("" when all are finite).
std::string nonfinite_weights(const ParameterSet& params, const ProcessGrid& grid) {
  std::vector<NamedTensor> w;
  for (const auto& p : params.all()) w.push_back({p.name, p.value});
  return first_error(grid.world(), describe_nonfinite(w));
}

}  // namespace

TrainSummary train(const RunConfig& cfg, const TrainOptions& opts) {
  const ModelConfig& mc = cfg.model;
  const TrainConfig& tc = cfg.train;
  ProcessGrid grid(MPI_COMM_WORLD, static_cast<int>(cfg.parallel.pipeline_stages));
  const StageSpec spec = stage_spec(mc, grid.stage(), grid.stages());

  const std::int64_t B = tc.batch_size, MB = tc.micro_batch_size, T = mc.seq_len;
  QUOPT_CHECK(B % grid.replicas() == 0, "train.batch_size = ", B, " is not divisible by the ",
              grid.replicas(), " data-parallel replicas (", grid.size(), " ranks / ", grid.stages(),
              " pipeline stages); the global batch is split evenly over replicas");
  const std::int64_t rows = B / grid.replicas();
  QUOPT_CHECK(rows % MB == 0, "each of the ", grid.replicas(), " replicas gets ", rows,
              " sequences per step, not a multiple of train.micro_batch_size = ", MB,
              "; choose a micro-batch size that divides batch_size / replicas");
  const std::int64_t n_micro = rows / MB;

  QUOPT_CHECK(!cfg.data.train.empty(),
              "data.train is not set: point it at a token shard made by `quopt tokenize`");
  QUOPT_CHECK(!cfg.data.val.empty(),
              "data.val is not set: point it at a token shard made by `quopt tokenize`");
  const TokenShard train_shard = TokenShard::open(cfg.data.train);
  const TokenShard val_shard = TokenShard::open(cfg.data.val);
  check_shard_vocab(train_shard, mc, "train");
  check_shard_vocab(val_shard, mc, "val");
  BatchLoader loader(train_shard, T, tc.seed, BatchOrder::Shuffled);
  BatchLoader val_loader(val_shard, T, 0, BatchOrder::Sequential);

  const Device device = select_train_device(cfg, grid.world());
  Olmo2 model(mc, DType::F32, spec, device);
  model.init(tc.seed);
  model.set_linear_quant(make_qat(cfg.quant));        // QuEST QAT when [quant] qat = "quest"; else exact
  RobustnessTracker tracker(cfg, grid, train_shard);  // [track]: checked before anything is written
  OptimizerContext octx;
  octx.data = grid.data();
  octx.seed = tc.seed;
  octx.config = cfg.raw.get();
  auto opt = make_optimizer(cfg.optimizer, model.params(), octx);
  // The last stage's copy of a tied embedding is not counted again in the gradient norm.
  const bool tied_copy = mc.tie_embeddings && grid.stages() > 1 && grid.last_stage();

  // Resume (verified, config compared) and the run directory put in order before anything is written.
  RunMetrics metrics;
  const RunStart start = start_run(cfg, opts, model.params(), *opt, metrics, grid.world());
  const std::int64_t step0 = start.step;
  const std::string jsonl = opts.out_dir + "/metrics.jsonl";
  MetricsLog mlog;
  if (grid.rank() == 0) mlog.open(jsonl, step0 > 0);
  DivergenceGuard guard(tc, cfg.optimizer);
  Watchdog watchdog(cfg.parallel.collective_timeout, grid.rank());

  GradSync sync(grid.data(), model.params());
  PipelineEngine engine(grid, model, MB, T);
  const double dscale = 1.0 / static_cast<double>(B * T);  // mean over the global batch's tokens

  auto validate = [&]() {
    // Validation batch b (MB sequential sequences) runs on replica b % replicas.
    double sum = 0.0, count = 0.0;
    for (std::int64_t b0 = 0; b0 < tc.val_batches; b0 += grid.replicas()) {
      const std::int64_t b = b0 + grid.replica();
      if (b >= tc.val_batches) {
        // Keep the pipeline's ranks in step: ranks of this replica still agree on the batch count.
        continue;
      }
      const LossSum ls = engine.evaluate(
          1, [&](std::int64_t, Tensor& in, Tensor& tg) { val_loader.load(b, MB, 0, MB, in, tg); });
      sum += ls.sum;
      count += static_cast<double>(ls.count);
    }
    sum = allreduce_sum(sum, grid.world());
    count = allreduce_sum(count, grid.world());
    return count > 0 ? sum / count : 0.0;
  };

  TrainSummary summary;
  summary.first_step = step0 + 1;
  log_info("training ", mc.name, " (", mc.total_params(), " parameters) with ", opt->name(), " for ",
           tc.steps, " steps of ", B, " x ", T, " tokens on ", grid.size(), " rank",
           grid.size() > 1 ? "s" : "", " (", grid.stages(), " pipeline stage", grid.stages() > 1 ? "s" : "",
           " x ", grid.replicas(), " replica", grid.replicas() > 1 ? "s" : "", ", ", n_micro, " micro-batch",
           n_micro > 1 ? "es" : "", " of ", MB, " per replica)");
  {  // how the optimizer's work and state are spread over this stage's data-parallel group
    const OptimizerReport rep = opt->report();
    double lo = static_cast<double>(rep.state_bytes), hi = lo;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, grid.world());
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, grid.world());
    log_info("optimizer ", opt->name(), ": work balance (max/mean assigned cost) ", rep.balance,
             ", state per rank ", lo / 1e6, " to ", hi / 1e6, " MB");
  }
  if (step0 == 0) {  // validation before the first step: the baseline every curve starts from
    watchdog.phase("the validation before step 1");
    const double v0 = validate();
    metrics.val_step.push_back(0);
    metrics.val_loss.push_back(v0);
    log_info("step      0/", tc.steps, " | val ", v0);
    if (grid.rank() == 0) mlog.write({0, 0, std::nan(""), 0.0, std::nan(""), v0, 0.0, 0.0});
  }
  for (std::size_t i = 0; i < metrics.val_step.size(); ++i)
    summary.val_loss.emplace_back(metrics.val_step[i], metrics.val_loss[i]);
  auto track = [&](std::int64_t s) {  // robustness during training (train/robustness.hpp); its seconds
    watchdog.phase(cat("the robustness measurement at step ", s));
    const RobustnessRecord r = tracker.measure(model, s, s * B * T);
    append_robustness(metrics, r);
    if (grid.rank() == 0) mlog.write_line(robustness_json(r));
    log_info(describe(r));
    return r.seconds;
  };
  if (step0 == 0 && tracker.due(0)) track(0);

  const double t_start = wall_seconds();
  double t_last = t_start;
  std::int64_t tokens_since_log = 0;
  std::int64_t step = step0;
  while (step < tc.steps) {
    ++step;
    watchdog.phase(cat("step ", step));
    model.params().zero_grads();
    const LossSum ls = engine.train_step(
        n_micro,
        [&](std::int64_t m, Tensor& in, Tensor& tg) {
          const std::int64_t r0 = grid.replica() * rows + m * MB;
          loader.load(step - 1, B, r0, r0 + MB, in, tg);
        },
        dscale, &sync);
    sync.finish();
    if (mc.tie_embeddings && grid.ends() != MPI_COMM_NULL) {  // first + last stage: sum the two copies' grads
      Parameter& e = model.params().get("embed/weight");
      MPI_Allreduce(MPI_IN_PLACE, e.grad.raw(), static_cast<int>(e.grad.numel()), MPI_FLOAT, MPI_SUM,
                    grid.ends());
    }
    const double loss = allreduce_sum(ls.sum, grid.world()) * dscale;
    double ss = 0.0;
    for (const auto& p : model.params().all())
      if (!(tied_copy && p.name == "embed/weight")) ss += kernels::sum_squares(p.grad);
    const double gnorm = std::sqrt(allreduce_sum(ss, grid.pipe()));
    // Never an update from a non-finite loss or gradient (train/divergence.hpp): skip it or stop.
    const bool finite = std::isfinite(loss) && std::isfinite(gnorm);
    const bool apply = guard.admit(step, loss, gnorm, finite ? "" : nonfinite_weights(model.params(), grid));
    if (apply && tc.grad_clip > 0.0 && gnorm > tc.grad_clip) {
      // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6)
      const double c = tc.grad_clip / (gnorm + 1e-6);
      for (auto& p : model.params().all()) kernels::scale(p.grad, c);
    }
    const double lr = cfg.optimizer.lr * lr_multiplier(cfg.schedule, step, tc.steps);
    if (apply) opt->step(model.params(), lr);
    tokens_since_log += B * T;

    metrics.step.push_back(step);
    metrics.tokens.push_back(step * B * T);
    metrics.loss.push_back(loss);
    metrics.lr.push_back(lr);
    metrics.grad_norm.push_back(gnorm);

    const bool do_val = (tc.val_every > 0 && step % tc.val_every == 0) || step == tc.steps;
    const bool do_log = do_val || (tc.log_every > 0 && step % tc.log_every == 0);
    std::optional<double> vloss;
    if (do_val) {
      watchdog.phase(cat("the validation at step ", step));
      vloss = validate();
      summary.val_loss.emplace_back(step, *vloss);
      metrics.val_step.push_back(step);
      metrics.val_loss.push_back(*vloss);
      if (snapshot_wanted(cfg.snapshot, step, tc.steps, metrics.val_loss))  // for PTQ at a common loss
        write_snapshot(opts.out_dir, grid.world(), mc, model.params(),
                       {step, *vloss, step * B * T, opts.resolved_toml});
    }
    if (do_log) {
      const double now = wall_seconds();
      const double tps = static_cast<double>(tokens_since_log) / std::max(1e-9, now - t_last);
      const double eta =
          (now - t_start) / static_cast<double>(step - step0) * static_cast<double>(tc.steps - step);
      char line[256];
      std::snprintf(line, sizeof line,
                    "step %6lld/%lld | loss %.4f | lr %.3e | gnorm %.3f | %.0f tok/s | ETA %s",
                    static_cast<long long>(step), static_cast<long long>(tc.steps), loss, lr, gnorm, tps,
                    format_duration(eta).c_str());
      std::string msg = line;
      if (vloss) msg += cat(" | val ", *vloss);
      log_info(msg);
      const double failed = allreduce_sum(static_cast<double>(opt->report().failed_roots), grid.world());
      if (grid.rank() == 0)
        mlog.write({step, step * B * T, loss, lr, gnorm, vloss, now - t_start, tps,
                    static_cast<std::int64_t>(failed), guard.skipped()});
      t_last = now;
      tokens_since_log = 0;
    }
    if (tracker.due(step)) t_last += track(step);  // not counted in the next progress line's tokens/s

    const bool stop = stop_requested(opts, grid);
    const bool periodic = (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || step == tc.steps;
    if (periodic || stop) {
      watchdog.phase(cat("the checkpoint at step ", step));
      summary.checkpoint = save_checkpoint(opts.out_dir, grid, model.params(), *opt, metrics,
                                           CheckpointMeta{step, opts.resolved_toml, start.resume_history},
                                           cfg.checkpoint.keep);
      log_info("checkpoint ", summary.checkpoint);
    }
    if (stop && step < tc.steps) {
      summary.interrupted = true;
      break;
    }
  }
  summary.last_step = step;
  summary.seconds = wall_seconds() - t_start;
  summary.tokens_per_s = static_cast<double>((step - step0) * B * T) / std::max(1e-9, summary.seconds);
  summary.comm_seconds = sync.comm_seconds() + engine.comm_seconds();
  if (tracker.active())
    log_info("robustness tracking: ", tracker.total_seconds(), " s (",
             100.0 * tracker.total_seconds() / std::max(1e-9, summary.seconds), "% of the ", summary.seconds,
             " s training loop; a step-0 measurement is counted but ran before the loop)");
  if (summary.interrupted) return summary;

  summary.run_file = opts.out_dir + "/run.h5";
  watchdog.phase("writing run.h5");
  RunInfo info{opts.resolved_toml, start.resume_history, tc.seed, grid.size(), mc};
  write_run_file(summary.run_file, MPI_COMM_WORLD, info, model.params(), metrics);
  return summary;
}

}  // namespace quopt
