#include "train/trainer.hpp"

#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "io/batch_loader.hpp"
#include "io/metrics_log.hpp"
#include "io/run_file.hpp"
#include "io/token_shard.hpp"
#include "kernels/ops.hpp"
#include "optim/optimizer.hpp"
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

// sqrt of the sum of squares of every gradient (fp64 accumulation, fixed order).
double global_grad_norm(const ParameterSet& params) {
  double ss = 0.0;
  for (const auto& p : params.all()) ss += kernels::sum_squares(p.grad);
  return std::sqrt(ss);
}

void check_shard_vocab(const TokenShard& shard, const ModelConfig& m, const char* key) {
  QUOPT_CHECK(shard.vocab_size() <= static_cast<std::uint64_t>(m.vocab_size), "data.", key, " = ", shard.path(),
              " was tokenized with a vocabulary of ", shard.vocab_size(), " but model.vocab_size = ", m.vocab_size,
              "; set model.vocab_size >= ", shard.vocab_size(), " or re-tokenize");
}

}  // namespace

double validation_loss(const Olmo2& model, const TokenShard& shard, std::int64_t batches, std::int64_t rows) {
  const std::int64_t T = model.config().seq_len;
  BatchLoader loader(shard, T, 0, BatchOrder::Sequential);
  double sum = 0.0;
  std::int64_t count = 0;
  Tensor in = Tensor::empty({rows, T}, DType::I32), tgt = Tensor::empty({rows, T}, DType::I32);
  for (std::int64_t b = 0; b < batches; ++b) {
    loader.load(b, rows, 0, rows, in, tgt);
    Activations act;
    const LossSum ls = model.forward(in, tgt, act);
    sum += ls.sum;
    count += ls.count;
  }
  return count ? sum / static_cast<double>(count) : 0.0;
}

TrainSummary train(const RunConfig& cfg, const std::string& resolved_toml, const std::string& out_dir) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  QUOPT_CHECK(world == 1, "quopt train runs on one rank in this version; got ", world,
              " ranks (data and pipeline parallelism: see docs/parallel.md once available)");

  const ModelConfig& mc = cfg.model;
  const TrainConfig& tc = cfg.train;
  QUOPT_CHECK(!cfg.data.train.empty(), "data.train is not set: point it at a token shard made by `quopt tokenize`");
  QUOPT_CHECK(!cfg.data.val.empty(), "data.val is not set: point it at a token shard made by `quopt tokenize`");
  const TokenShard train_shard = TokenShard::open(cfg.data.train);
  const TokenShard val_shard = TokenShard::open(cfg.data.val);
  check_shard_vocab(train_shard, mc, "train");
  check_shard_vocab(val_shard, mc, "val");

  Olmo2 model(mc, DType::F32);
  model.init(tc.seed);
  auto opt = make_optimizer(cfg.optimizer, model.params());
  BatchLoader loader(train_shard, mc.seq_len, tc.seed, BatchOrder::Shuffled);

  const std::int64_t B = tc.batch_size, MB = tc.micro_batch_size, T = mc.seq_len;
  const std::int64_t accum = B / MB;
  const double dscale = 1.0 / static_cast<double>(B * T);  // mean over the global batch's tokens
  const std::int64_t val_rows = MB;

  // Inputs are valid: only now does anything get written.
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  QUOPT_CHECK(!ec, "cannot create output directory ", out_dir, ": ", ec.message());
  MetricsLog mlog;
  if (rank == 0) mlog.open(out_dir + "/metrics.jsonl", false);
  RunMetrics metrics;
  TrainSummary summary;
  log_info("training ", mc.name, " (", mc.total_params(), " parameters) with ", opt->name(), " for ", tc.steps,
           " steps of ", B, " x ", T, " tokens (", accum, " micro-batch", accum > 1 ? "es" : "", " of ", MB, ")");

  Tensor in = Tensor::empty({MB, T}, DType::I32), tgt = Tensor::empty({MB, T}, DType::I32);
  {  // validation before the first step: the baseline every curve starts from
    const double v0 = validation_loss(model, val_shard, tc.val_batches, val_rows);
    summary.val_loss.emplace_back(0, v0);
    metrics.val_step.push_back(0);
    metrics.val_loss.push_back(v0);
    log_info("step      0/", tc.steps, " | val ", v0);
    if (rank == 0) mlog.write({0, 0, std::nan(""), 0.0, std::nan(""), v0, 0.0, 0.0});
  }
  const double t_start = wall_seconds();
  double t_last = t_start;
  std::int64_t tokens_since_log = 0;
  for (std::int64_t step = 1; step <= tc.steps; ++step) {
    model.params().zero_grads();
    double loss_sum = 0.0;
    for (std::int64_t m = 0; m < accum; ++m) {
      loader.load(step - 1, B, m * MB, (m + 1) * MB, in, tgt);
      Activations act;
      loss_sum += model.forward(in, tgt, act).sum;
      model.backward(act, dscale);
    }
    const double loss = loss_sum * dscale;
    QUOPT_CHECK(std::isfinite(loss), "the training loss became ", loss, " at step ", step,
                "; lower optimizer.lr or enable train.grad_clip");
    const double gnorm = global_grad_norm(model.params());
    if (tc.grad_clip > 0.0 && gnorm > tc.grad_clip) {
      // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6)
      const double c = tc.grad_clip / (gnorm + 1e-6);
      for (auto& p : model.params().all()) kernels::scale(p.grad, c);
    }
    const double lr = cfg.optimizer.lr * lr_multiplier(cfg.schedule, step, tc.steps);
    opt->step(model.params(), lr);
    tokens_since_log += B * T;

    summary.train_loss.push_back(loss);
    metrics.step.push_back(step);
    metrics.tokens.push_back(step * B * T);
    metrics.loss.push_back(loss);
    metrics.lr.push_back(lr);
    metrics.grad_norm.push_back(gnorm);

    const bool do_val = (tc.val_every > 0 && step % tc.val_every == 0) || step == tc.steps;
    const bool do_log = do_val || (tc.log_every > 0 && step % tc.log_every == 0);
    std::optional<double> vloss;
    if (do_val) {
      vloss = validation_loss(model, val_shard, tc.val_batches, val_rows);
      summary.val_loss.emplace_back(step, *vloss);
      metrics.val_step.push_back(step);
      metrics.val_loss.push_back(*vloss);
    }
    if (do_log) {
      const double now = wall_seconds();
      const double tps = static_cast<double>(tokens_since_log) / std::max(1e-9, now - t_last);
      const double eta = (now - t_start) / static_cast<double>(step) * static_cast<double>(tc.steps - step);
      char line[256];
      std::snprintf(line, sizeof line, "step %6lld/%lld | loss %.4f | lr %.3e | gnorm %.3f | %.0f tok/s | ETA %s",
                    static_cast<long long>(step), static_cast<long long>(tc.steps), loss, lr, gnorm, tps,
                    format_duration(eta).c_str());
      std::string msg = line;
      if (vloss) msg += cat(" | val ", *vloss);
      log_info(msg);
      if (rank == 0) mlog.write({step, step * B * T, loss, lr, gnorm, vloss, now - t_start, tps});
      t_last = now;
      tokens_since_log = 0;
    }
  }
  summary.seconds = wall_seconds() - t_start;
  summary.tokens_per_s = static_cast<double>(tc.steps * B * T) / std::max(1e-9, summary.seconds);

  summary.run_file = out_dir + "/run.h5";
  RunInfo info{resolved_toml, tc.seed, world, mc};
  write_run_file(summary.run_file, MPI_COMM_WORLD, info, model.params(), metrics);
  return summary;
}

}  // namespace quopt
