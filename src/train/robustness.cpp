#include "train/robustness.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>

#include "analysis/model_analysis.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "io/calibration.hpp"
#include "io/metrics_log.hpp"
#include "quant/ptq.hpp"
#include "quant/qat.hpp"

namespace quopt {

RobustnessTracker::RobustnessTracker(const RunConfig& cfg, const ProcessGrid& grid, const TokenShard& train)
    : cfg_(cfg), grid_(grid), every_(cfg.track.every), qat_(cfg.quant.qat != "none") {
  try {
    scheme_ = parse_quant_scheme(cfg.track.scheme);
    check_scheme_fits(scheme_, cfg.model, cfg.quant.layers);
  } catch (const Error& e) {
    fail("track.scheme = \"", cfg.track.scheme, "\": ", e.what());
  }
  if (every_ == 0) return;
  QUOPT_CHECK(grid.stages() == 1, "track.every = ", every_,
              " measures robustness on whole models, but parallel.pipeline_stages = ", grid.stages(),
              " splits the model over ranks; set track.every = 0 (and run `quopt ptq` / `quopt analyze` ",
              "after training) or train data-parallel only (parallel.pipeline_stages = 1)");
  load_calibration_batch(train, cfg.model.seq_len, cfg.train.seed, 0, cfg.track.sequences, tokens_, targets_);
}

bool RobustnessTracker::due(std::int64_t step) const {
  return every_ > 0 && (step == 0 || step % every_ == 0 || step == cfg_.train.steps);
}

RobustnessRecord RobustnessTracker::measure(const Olmo2& model, std::int64_t step, std::int64_t tokens) {
  QUOPT_CHECK(active(), "robustness tracking is off (track.every = 0)");
  const double t0 = wall_seconds();
  const ModelConfig& mc = cfg_.model;
  Olmo2 fp(mc), q(mc);
  for (Olmo2* m : {&fp, &q})
    for (auto& p : m->params().all()) p.value.copy_from(model.params().get(p.name).value);
  RobustnessRecord r;
  r.step = step;
  r.tokens = tokens;
  if (qat_) {  // already quantized: its own QAT quantization against the weights computed exactly
    q.set_linear_quant(make_qat(cfg_.quant));
    r.scheme = "qat";
  } else {
    quantize_model(q, scheme_, cfg_.quant.layers, {tokens_});
    r.scheme = scheme_.name;
  }

  // Losses: this rank's contiguous share of the calibration sequences, summed over the ranks.
  const std::int64_t B = tokens_.dim(0);
  const int rank = grid_.rank(), size = grid_.size();
  const std::int64_t b0 = B * rank / size, b1 = B * (rank + 1) / size;
  double sums[4] = {0.0, 0.0, 0.0, 0.0};  // fp sum, fp count, quantized sum, quantized count
  if (b1 > b0) {
    const Tensor in = tokens_.slice(b0, b1), tg = targets_.slice(b0, b1);
    Activations a;
    const LossSum lf = fp.forward(in, tg, a);
    const LossSum lq = q.forward(in, tg, a);
    sums[0] = lf.sum;
    sums[1] = static_cast<double>(lf.count);
    sums[2] = lq.sum;
    sums[3] = static_cast<double>(lq.count);
  }
  MPI_Allreduce(MPI_IN_PLACE, sums, 4, MPI_DOUBLE, MPI_SUM, grid_.world());
  r.loss_fp = sums[0] / std::max(1.0, sums[1]);
  r.loss_quant = sums[2] / std::max(1.0, sums[3]);
  r.loss_increase = r.loss_quant - r.loss_fp;

  AnalysisOptions opt;
  opt.weight_metrics = false;  // G1/G2 and weight outliers: not tracked (their Lanczos runs dominate)
  const AnalysisResult a = analyze_model(fp, q, tokens_, opt, grid_.world());
  r.R_L = a.R_L;
  r.mmr_mean = a.mmr_mean;
  r.mmr_max = a.mmr_max;
  r.mmr_tomean_mean = a.mmr_tomean_mean;
  r.mmr_tomean_max = a.mmr_tomean_max;
  r.kurtosis_mean = a.kurtosis_mean;
  r.kurtosis_max = a.kurtosis_max;
  double dt = wall_seconds() - t0;
  MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, grid_.world());  // the same on every rank
  r.seconds = dt;
  total_seconds_ += dt;
  return r;
}

namespace {

// (name, value) pairs of a record, in the order of the JSON object and the curves.
std::vector<std::pair<const char*, double>> fields(const RobustnessRecord& r) {
  return {{"loss_fp", r.loss_fp},
          {"loss_quant", r.loss_quant},
          {"loss_increase", r.loss_increase},
          {"R_L", r.R_L},
          {"mmr_mean", r.mmr_mean},
          {"mmr_max", r.mmr_max},
          {"mmr_tomean_mean", r.mmr_tomean_mean},
          {"mmr_tomean_max", r.mmr_tomean_max},
          {"kurtosis_mean", r.kurtosis_mean},
          {"kurtosis_max", r.kurtosis_max},
          {"seconds", r.seconds}};
}

}  // namespace

std::string robustness_json(const RobustnessRecord& r) {
  std::string s =
      cat("{\"step\":", r.step, ",\"tokens\":", r.tokens, ",\"robustness\":{\"scheme\":\"", r.scheme, "\"");
  for (const auto& [name, v] : fields(r)) s += cat(",\"", name, "\":", json_number(v));
  return s + "}}";
}

void append_robustness(RunMetrics& m, const RobustnessRecord& r) {
  m.extra["robustness_step"].push_back(static_cast<double>(r.step));
  m.extra["robustness_tokens"].push_back(static_cast<double>(r.tokens));
  for (const auto& [name, v] : fields(r)) m.extra[std::string("robustness_") + name].push_back(v);
}

std::string describe(const RobustnessRecord& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "robustness (%s) at step %lld: loss %.4f -> %.4f (%+.4f), R_L %.4g, MMR max/mean %.3g, "
                "max/median %.3g, kurtosis %.3g (%.2f s)",
                r.scheme.c_str(), static_cast<long long>(r.step), r.loss_fp, r.loss_quant, r.loss_increase,
                r.R_L, r.mmr_tomean_mean, r.mmr_mean, r.kurtosis_mean, r.seconds);
  return buf;
}

}  // namespace quopt
