// quopt analyze CONFIG --run DIR [--quant SCHEME]...: outlier metrics and the ABC decomposition of the
// model quantized by `quopt ptq` (its Q(W) = W - /quant/<scheme>/weights/*_error, and per-token
// activation quantization when the scheme has one), against the full-precision model, on the
// calibration batch; written to /analysis/<scheme> (docs/analysis.md). Work is spread over the ranks.
// A QAT run is already quantized: its analysis compares the model as trained (its QuEST quantizer)
// with the same weights computed exactly, written to /analysis/qat; PTQ schemes on it are refused.
#include <mpi.h>

#include <set>

#include "analysis/model_analysis.hpp"
#include "analysis/writer.hpp"
#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "app/model_eval.hpp"
#include "app/trained_arithmetic.hpp"
#include "core/error.hpp"
#include "core/finite.hpp"
#include "core/log.hpp"
#include "io/run_file_update.hpp"
#include "io/run_lock.hpp"
#include "kernels/ops.hpp"
#include "quant/ptq.hpp"

namespace quopt::app {

namespace {

// The step whose weights /quant/<scheme> was made from (files written before steps were recorded, or
// no /quant/<scheme>, which recorded_quantized_model reports: the final weights).
std::int64_t quantized_step(const std::string& run_file, const QuantScheme& s) {
  H5File f = H5File::open_read(run_file, MPI_COMM_WORLD);
  const std::string g = "quant/" + s.name;
  return f.exists(g) && f.has_attr(g, "step") ? f.get_attr_int(g, "step") : -1;
}

// The quantized model `quopt ptq` evaluated: weights from the recorded errors, activation quantizer.
std::unique_ptr<Olmo2> recorded_quantized_model(const RunConfig& cfg, const std::string& run_file,
                                                const std::string& weights_file, const QuantScheme& s) {
  auto q = load_trained_model(cfg, run_file, weights_file);
  H5File f = H5File::open_read(run_file, MPI_COMM_WORLD);
  const std::string root = "quant/" + s.name + "/weights/";
  QUOPT_CHECK(f.exists("quant/" + s.name), run_file, " has no /quant/", s.name,
              ": run `quopt ptq ... --run DIR --scheme ", s.name, "` first");
  for (auto& p : q->params().all()) {
    const std::string err = root + p.name + "_error";
    if (!f.exists(err)) continue;  // not quantized (embedding, head, gains, layers not selected)
    const Tensor e = f.read(err, p.value.shape(), p.value.dtype());
    const std::string bad = describe_nonfinite({{"/" + err, e}});
    QUOPT_CHECK(bad.empty(), run_file, ": ", bad, "; run `quopt ptq ... --scheme ", s.name, "` again");
    kernels::axpy(-1.0, e, p.value);  // Q(W) = W - (W - Q(W))
  }
  f.close();
  if (s.act_bits > 0)
    q->set_linear_quant(std::make_shared<ActQuantLinear>(
        s.act_bits, std::set<std::string>(cfg.quant.layers.begin(), cfg.quant.layers.end())));
  return q;
}

}  // namespace

int cmd_analyze(const CommonArgs& a, const std::string& run_dir,
                const std::vector<std::string>& scheme_names) {
  const LoadedConfig lc = load_config(a);
  const RunLock lock =
      RunLock::acquire(run_dir, command_text(a), MPI_COMM_WORLD, false);  // one writer of run.h5
  const RunConfig& cfg = lc.run;
  const std::vector<std::string>& names = scheme_names.empty() ? cfg.quant.schemes : scheme_names;
  std::vector<QuantScheme> schemes;
  for (const auto& n : names) schemes.push_back(parse_quant_scheme(n));
  const std::string run_file = run_dir + "/run.h5";
  const TrainedArithmetic trained = read_trained_arithmetic(run_file, cfg);
  if (trained.qat() && !scheme_names.empty()) reject_ptq_of_qat(trained, run_file, "quopt analyze --quant");
  const Tensor tokens = calibration_batches(cfg).front();
  RunFileUpdate update(run_file, MPI_COMM_WORLD);  // run.h5 changes only once every result is written
  auto analyze = [&](const std::string& group, Olmo2& fp, Olmo2& q) {
    const AnalysisResult r = analyze_model(fp, q, tokens, {}, MPI_COMM_WORLD);
    H5File& f = update.file();
    write_analysis(f, group, r);
    if (trained.qat()) f.set_attr("analysis/" + group, "arithmetic", trained.name());
    log_info(group, ": R_L ", r.R_L, ", MMR mean ", r.mmr_mean, " max ", r.mmr_max, " (max-to-mean: mean ",
             r.mmr_tomean_mean, " max ", r.mmr_tomean_max, "), kurtosis mean ", r.kurtosis_mean, " max ",
             r.kurtosis_max, " (", r.modules.size(), " modules, ", r.layers.size(), " linear layers, ",
             r.tokens, " tokens) -> /analysis/", group);
  };
  if (trained.qat()) {
    const bool ignored = scheme_names.empty() && !cfg.quant.schemes.empty();
    log_info(run_file, " is a QAT run (", trained.name(),
             "): analysing its QAT quantization against the same weights computed exactly",
             ignored ? " (quant.schemes does not apply to a QAT run)" : "");
    auto fp = load_trained_model(cfg, run_file);
    auto q = load_trained_model(cfg, run_file);  // as trained
    fp->set_linear_quant(nullptr);               // the latent weights, exact arithmetic
    analyze("qat", *fp, *q);
    update.commit();
    return 0;
  }
  for (const QuantScheme& s : schemes) {
    // The full-precision model at the step the scheme was quantized from (ptq's --step or the study's).
    const WeightsSource src = locate_weights(run_dir, quantized_step(run_file, s), MPI_COMM_WORLD);
    auto fp = load_trained_model(cfg, run_file, src.file);
    auto q = recorded_quantized_model(cfg, run_file, src.file, s);
    analyze(s.name, *fp, *q);
    H5File& f = update.file();
    WeightsChoice at;  // the protocol and threshold ptq recorded
    const std::string qg = "quant/" + s.name;
    if (f.has_attr(qg, "protocol")) at.protocol = f.get_attr_string(qg, "protocol");
    if (f.has_attr(qg, "threshold")) at.threshold = f.get_attr_double(qg, "threshold");
    record_weights_choice(f, "analysis/" + s.name, src, at);
  }
  update.commit();
  return 0;
}

}  // namespace quopt::app
