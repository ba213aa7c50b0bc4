#include "train/bench.hpp"

#include <cblas.h>

#include <cstdio>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/timer.hpp"
#include "kernels/backend.hpp"
#include "kernels/ops.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "train/device.hpp"

namespace quopt {

namespace {

// Times cblas_sgemm on every recorded shape, as many calls as training made; returns each shape's rate.
std::vector<GemmShapeRate> bare_sgemm_rates(const std::vector<std::pair<kernels::GemmShape, std::int64_t>>& shapes) {
  std::vector<GemmShapeRate> out;
  Rng rng(99, 1);
  for (const auto& [s, count] : shapes) {
    const std::int64_t am = s.trans_a ? s.k : s.m, an = s.trans_a ? s.m : s.k;
    const std::int64_t bm = s.trans_b ? s.n : s.k, bn = s.trans_b ? s.k : s.n;
    std::vector<float> a(static_cast<std::size_t>(s.batch * am * an)),
        b(static_cast<std::size_t>(s.batch * bm * bn));
    std::vector<float> c(static_cast<std::size_t>(s.batch * s.m * s.n), 0.0f);
    for (auto& x : a) x = static_cast<float>(rng.uniform() - 0.5);
    for (auto& x : b) x = static_cast<float>(rng.uniform() - 0.5);
    const double t0 = wall_seconds();
    for (std::int64_t r = 0; r < count; ++r)
      for (std::int64_t i = 0; i < s.batch; ++i)
        cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans,
                    s.trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(s.m), static_cast<int>(s.n),
                    static_cast<int>(s.k), 1.0f, a.data() + i * am * an, static_cast<int>(an),
                    b.data() + i * bm * bn, static_cast<int>(bn), 0.0f, c.data() + i * s.m * s.n,
                    static_cast<int>(s.n));
    const double seconds = wall_seconds() - t0;
    const double flops = 2.0 * static_cast<double>(s.m * s.n * s.k * s.batch * count);
    out.push_back({s, count, seconds > 0 ? flops / seconds * 1e-9 : 0.0});
  }
  return out;
}

// The rate of all shapes together: total flops over total time.
double aggregate_rate(const std::vector<GemmShapeRate>& rates) {
  double flops = 0.0, seconds = 0.0;
  for (const auto& r : rates) {
    const double f = 2.0 * static_cast<double>(r.shape.m * r.shape.n * r.shape.k * r.shape.batch * r.calls);
    flops += f;
    if (r.bare_gflops_rate > 0) seconds += f / (r.bare_gflops_rate * 1e9);
  }
  return seconds > 0 ? flops / seconds * 1e-9 : 0.0;
}

}  // namespace

BenchResult bench_training(const RunConfig& cfg, std::int64_t warmup, std::int64_t steps, MPI_Comm comm) {
  const ModelConfig& mc = cfg.model;
  const Device device = select_train_device(cfg, comm);
  const bool gpu = device == Device::Cuda;
  Olmo2 model(mc, DType::F32, {}, device);
  model.init(cfg.train.seed);
  OptimizerContext ctx;
  ctx.data = comm;
  ctx.seed = cfg.train.seed;
  ctx.config = cfg.raw.get();
  auto opt = make_optimizer(cfg.optimizer, model.params(), ctx);
  const std::int64_t B = cfg.train.batch_size, MB = cfg.train.micro_batch_size, T = mc.seq_len;
  const double dscale = 1.0 / static_cast<double>(B * T);
  Rng rng(cfg.train.seed, 2);
  Tensor in = Tensor::empty({MB, T}, DType::I32), tgt = Tensor::empty({MB, T}, DType::I32);
  for (std::int64_t i = 0; i < MB * T; ++i) {
    in.data<std::int32_t>()[i] =
        static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(mc.vocab_size)));
    tgt.data<std::int32_t>()[i] =
        static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(mc.vocab_size)));
  }
  double grad_s = 0.0, opt_s = 0.0;
  auto one_step = [&] {
    const double t0 = wall_seconds();
    model.params().zero_grads();
    for (std::int64_t m = 0; m < B / MB; ++m) {
      Activations act;
      act.head_dscale = dscale;  // as the trainer: the fused head computes its gradients in the forward
      model.forward(in, tgt, act);
      model.backward(act, dscale);
    }
    kernels::cuda_synchronize();  // the GPU works asynchronously: time what it did
    const double t1 = wall_seconds();
    opt->step(model.params(), cfg.optimizer.lr);
    kernels::cuda_synchronize();
    grad_s += t1 - t0;
    opt_s += wall_seconds() - t1;
  };
  for (std::int64_t i = 0; i < warmup; ++i) one_step();
  grad_s = opt_s = 0.0;
  const OptimizerReport before = opt->report();
  kernels::gemm_stats_reset();
  // On the GPU the statistics would synchronise after every GEMM and distort the step time: off there.
  kernels::gemm_stats_enable(!gpu);
  const double t0 = wall_seconds(), c0 = process_cpu_seconds();
  for (std::int64_t i = 0; i < steps; ++i) one_step();
  const double elapsed = wall_seconds() - t0, cpu = process_cpu_seconds() - c0;
  kernels::gemm_stats_enable(false);
  const kernels::GemmStats g = kernels::gemm_stats();
  const auto shapes = kernels::gemm_shape_counts();

  BenchResult r;
  r.steps = steps;
  r.tokens_per_step = B * T;
  r.step_seconds = elapsed / static_cast<double>(steps);
  r.tokens_per_s = static_cast<double>(B * T * steps) / elapsed;
  r.tokens_per_cpu_s = cpu > 0 ? static_cast<double>(B * T * steps) / cpu : 0.0;
  r.gemm_seconds = g.seconds / static_cast<double>(steps);
  r.gemm_gflops_rate = g.seconds > 0 ? g.flops / g.seconds * 1e-9 : 0.0;
  r.gemm_calls = g.calls;
  r.gemm_shapes = static_cast<std::int64_t>(shapes.size());
  if (!gpu) r.shape_rates = bare_sgemm_rates(shapes);
  r.bare_gflops_rate = aggregate_rate(r.shape_rates);
  r.device = gpu ? kernels::cuda_device_name() + " (" + cfg.train.precision + ")" : "host";
  const OptimizerReport after = opt->report();
  const double n = static_cast<double>(steps);
  r.grad_seconds = grad_s / n;
  r.optimizer_seconds = opt_s / n;
  r.precond_seconds = (after.precond_seconds - before.precond_seconds) / n;
  r.root_seconds = (after.root_seconds - before.root_seconds) / n;
  r.comm_seconds = (after.comm_seconds - before.comm_seconds) / n;
  r.update_seconds = (after.update_seconds - before.update_seconds) / n;
  r.balance = after.balance;
  r.state_bytes = after.state_bytes;
  return r;
}

std::string describe(const BenchResult& r, const RunConfig& cfg) {
  char buf[1024];
  const double mfu_flops = cfg.model.train_flops_per_token() * r.tokens_per_s * 1e-9;
  if (r.device != "host") {
    std::snprintf(buf, sizeof buf,
                  "bench %s (%lld parameters), optimizer %s, on %s, %lld tokens/step, %lld timed steps\n"
                  "  step time %.4f s, %.1f tokens/s, %.2f model GFLOP/s (6N+attention accounting)\n"
                  "  forward+backward %.4f s/step, optimizer step %.4f s/step",
                  cfg.model.name.c_str(), static_cast<long long>(cfg.model.total_params()),
                  cfg.optimizer.name.c_str(), r.device.c_str(), static_cast<long long>(r.tokens_per_step),
                  static_cast<long long>(r.steps), r.step_seconds, r.tokens_per_s, mfu_flops, r.grad_seconds,
                  r.optimizer_seconds);
    return buf;
  }
  std::snprintf(
      buf, sizeof buf,
      "bench %s (%lld parameters), optimizer %s, %lld tokens/step, %lld timed steps\n"
      "  step time %.4f s, %.1f tokens/s, %.1f tokens per CPU-second, %.2f model GFLOP/s (6N+attention "
      "accounting)\n"
      "  GEMM inside training: %.4f s/step (%.0f%% of the step), %.2f GFLOP/s over %lld calls, %lld shapes\n"
      "  bare cblas_sgemm, same shapes and call counts: %.2f GFLOP/s\n"
      "  ratio (in-training GEMM rate / bare sgemm rate): %.3f",
      cfg.model.name.c_str(), static_cast<long long>(cfg.model.total_params()), cfg.optimizer.name.c_str(),
      static_cast<long long>(r.tokens_per_step), static_cast<long long>(r.steps), r.step_seconds,
      r.tokens_per_s, r.tokens_per_cpu_s, mfu_flops, r.gemm_seconds, 100.0 * r.gemm_seconds / r.step_seconds, r.gemm_gflops_rate,
      static_cast<long long>(r.gemm_calls), static_cast<long long>(r.gemm_shapes), r.bare_gflops_rate,
      r.bare_gflops_rate > 0 ? r.gemm_gflops_rate / r.bare_gflops_rate : 0.0);
  return buf;
}

std::string describe_gemm_shapes(const BenchResult& r) {
  std::string out;
  char buf[256];
  for (const auto& g : r.shape_rates) {
    std::snprintf(buf, sizeof buf, "gemm %lld %lld %lld %lld %d %d %lld %.3f\n", static_cast<long long>(g.shape.m),
                  static_cast<long long>(g.shape.n), static_cast<long long>(g.shape.k),
                  static_cast<long long>(g.shape.batch), g.shape.trans_a ? 1 : 0, g.shape.trans_b ? 1 : 0,
                  static_cast<long long>(g.calls), g.bare_gflops_rate);
    out += buf;
  }
  return out;
}

std::string describe_optimizer_table(const std::vector<std::pair<std::string, BenchResult>>& rows,
                                     int ranks) {
  double base = 0.0;
  for (const auto& [name, r] : rows)
    if (name == "adamw") base = r.step_seconds;
  std::string out =
      cat("optimizer step cost at np=", ranks,
          " (ratios to AdamW's whole step; parts: gradient = forward+backward, then the optimizer's "
          "preconditioner statistics, root/eigen/Newton-Schulz work, communication, rest)\n");
  char buf[320];
  std::snprintf(buf, sizeof buf, "%-8s %9s %7s | %7s %7s %7s %7s %7s | %7s %12s\n", "optimizer", "step (s)",
                "ratio", "grad", "precond", "root", "comm", "rest", "balance", "state/rank");
  out += buf;
  for (const auto& [name, r] : rows) {
    const double d = base > 0 ? base : r.step_seconds;
    const double rest = r.optimizer_seconds - r.precond_seconds - r.root_seconds - r.comm_seconds;
    std::snprintf(buf, sizeof buf, "%-8s %9.4f %7.3f | %7.3f %7.3f %7.3f %7.3f %7.3f | %7.3f %9.2f MB\n",
                  name.c_str(), r.step_seconds, r.step_seconds / d, r.grad_seconds / d, r.precond_seconds / d,
                  r.root_seconds / d, r.comm_seconds / d, rest / d, r.balance,
                  static_cast<double>(r.state_bytes) / 1e6);
    out += buf;
  }
  return out;
}

}  // namespace quopt
