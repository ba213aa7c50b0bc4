// quopt ptq CONFIG --run DIR [--scheme S]...: post-training quantization of DIR/run.h5 with each scheme
// (default: [quant] schemes), evaluation of the full-precision and quantized models on the same data,
// and the quantization record under /quant/<scheme> (docs/run-file.md).
// quopt eval CONFIG --run DIR [--quant SCHEME]: evaluation only.
// Both evaluate a QAT run as it was trained (app/trained_arithmetic.hpp) and refuse PTQ on top of it;
// every scheme is checked against the model before anything is written.
#include <mpi.h>

#include <cstdio>
#include <map>
#include <optional>

#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "app/model_eval.hpp"
#include "app/trained_arithmetic.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "io/run_file_update.hpp"
#include "io/run_lock.hpp"
#include "kernels/ops.hpp"
#include "quant/ptq.hpp"

namespace quopt::app {

namespace {

// The first `rows` rows of x (all when it has fewer).
Tensor head_rows(const Tensor& x, std::int64_t rows) {
  return x.slice(0, std::min(rows, x.dim(0))).clone();
}

// Per block linear of the full-precision model on one batch: its input X, X - Q(X), and the layer's own
// output error Q(X) Q(W)^T - X W^T.
void record_activations(H5File& f, const std::string& root, Olmo2& fp, const Olmo2& q, const Tensor& tokens,
                        const std::vector<std::string>& layers, std::int64_t rows) {
  const auto* act = dynamic_cast<const ActQuantLinear*>(q.linear_quant());
  std::vector<std::pair<std::string, Tensor>> inputs;  // (parameter name, X)
  const std::set<std::string> selected(layers.begin(), layers.end());
  fp.set_linear_observer([&](std::int64_t blk, const std::string& param, const Tensor& x, const Tensor&) {
    if (selected.count(param)) inputs.emplace_back(block_name(blk) + "/" + param, head_rows(x, rows));
  });
  Activations a;
  fp.forward(tokens, Tensor::zeros(tokens.shape(), DType::I32), a);
  fp.set_linear_observer(nullptr);
  for (const auto& [name, x] : inputs) {
    const Tensor xq = act ? act->quantize(x) : x;
    Tensor xerr = x.clone();
    kernels::axpy(-1.0, xq, xerr);
    const Tensor& w = fp.params().get(name).value;
    const Tensor& wq = q.params().get(name).value;
    Tensor y = Tensor::empty({x.dim(0), w.dim(0)}), yq = Tensor::empty({x.dim(0), w.dim(0)});
    kernels::matmul(x, false, w, true, y);
    kernels::matmul(xq, false, wq, true, yq);
    kernels::axpy(-1.0, y, yq);
    f.write_tensor(root + "/activations/" + name + "_input", x, 0);
    f.write_tensor(root + "/activations/" + name + "_input_error", xerr, 0);
    f.write_tensor(root + "/outputs/" + name + "_output_error", yq, 0);
  }
}

}  // namespace

int cmd_ptq(const CommonArgs& a, const std::string& run_dir, const std::vector<std::string>& scheme_names,
            const WeightsChoice& at) {
  const LoadedConfig lc = load_config(a);
  const RunLock lock =
      RunLock::acquire(run_dir, command_text(a), MPI_COMM_WORLD, false);  // one writer of run.h5
  const RunConfig& cfg = lc.run;
  const std::vector<std::string>& names = scheme_names.empty() ? cfg.quant.schemes : scheme_names;
  std::vector<QuantScheme> schemes;
  for (const auto& n : names) schemes.push_back(parse_quant_scheme(n));  // all errors before any work
  QUOPT_CHECK(!schemes.empty(), "no PTQ scheme: set quant.schemes or pass --scheme");
  const std::string run_file = run_dir + "/run.h5";
  const TrainedArithmetic trained = read_trained_arithmetic(run_file, cfg);
  reject_ptq_of_qat(trained, run_file, "quopt ptq");
  for (const QuantScheme& s : schemes) check_scheme_fits(s, cfg.model, cfg.quant.layers);
  const WeightsSource src = locate_weights(run_dir, at.step, MPI_COMM_WORLD);
  log_info("quantizing the weights of step ", src.step, src.is_final ? " (final)" : "", " from ", src.file);
  auto fp = load_trained_model(cfg, run_file, src.file);
  const EvalData data = load_eval_data(cfg);
  const std::vector<Tensor> calib = calibration_batches(cfg);

  const EvalResult fp_result = evaluate_model(*fp, data, cfg);
  log_info("full precision: ", describe(fp_result));
  RunFileUpdate update(run_file, MPI_COMM_WORLD);  // run.h5 changes only once everything is written
  H5File& f = update.file();
  write_eval(f, "eval", fp_result);
  f.set_attr("eval", "arithmetic", trained.name());
  record_weights_choice(f, "eval", src, at);
  for (const QuantScheme& s : schemes) {
    auto q = load_trained_model(cfg, run_file, src.file);
    const PtqOutcome o = quantize_model(*q, s, cfg.quant.layers, calib);
    const EvalResult r = evaluate_model(*q, data, cfg);
    char delta[48];
    std::snprintf(delta, sizeof delta, " (loss %+.5f vs full precision)", r.val.loss - fp_result.val.loss);
    log_info(s.name, ": ", describe(r), delta);
    const std::string root = "quant/" + s.name;
    if (f.exists(root)) f.remove(root);
    f.create_group(root);
    f.set_attr(root, "method", std::string(quant_method_name(s.method)));
    f.set_attr(root, "weight_bits", static_cast<std::int64_t>(s.weight_bits));
    f.set_attr(root, "act_bits", static_cast<std::int64_t>(s.act_bits));
    f.set_attr(root, "granularity", std::string(quant_granularity(s)));
    f.set_attr(root, "group_size", s.group_size);
    std::string layers;
    for (const auto& l : cfg.quant.layers) layers += (layers.empty() ? "" : ",") + l;
    f.set_attr(root, "layers", layers);
    record_weights_choice(f, root, src, at);
    write_eval(f, root + "/eval", r);
    for (const auto& t : o.weight_error) f.write_tensor(root + "/weights/" + t.name, t.tensor, 0);
    for (const auto& t : o.scales) f.write_tensor(root + "/weights/" + t.name, t.tensor, 0);
    record_activations(f, root, *fp, *q, calib.front(), cfg.quant.layers, cfg.quant.record_rows);
  }
  update.commit();
  log_info(
      "wrote /eval and /quant/{",
      [&] {
        std::string s;
        for (const auto& q : schemes) s += (s.empty() ? "" : ",") + q.name;
        return s;
      }(),
      "} to ", run_file);
  return 0;
}

int cmd_eval(const CommonArgs& a, const std::string& run_dir, const std::string& scheme,
             const std::string& logits_file, const WeightsChoice& at) {
  const LoadedConfig lc = load_config(a);
  const RunLock lock =
      RunLock::acquire(run_dir, command_text(a), MPI_COMM_WORLD, false);  // one writer of run.h5
  const RunConfig& cfg = lc.run;
  const std::string run_file = run_dir + "/run.h5";
  const TrainedArithmetic trained = read_trained_arithmetic(run_file, cfg);
  std::optional<QuantScheme> ptq;
  if (!scheme.empty()) {
    ptq = parse_quant_scheme(scheme);
    reject_ptq_of_qat(trained, run_file, "quopt eval --quant " + scheme);
    check_scheme_fits(*ptq, cfg.model, cfg.quant.layers);
  }
  const WeightsSource src = locate_weights(run_dir, at.step, MPI_COMM_WORLD);
  auto model = load_trained_model(cfg, run_file, src.file);
  const EvalData data = load_eval_data(cfg);
  std::string group = "eval";
  if (ptq) {
    const QuantScheme& s = *ptq;
    quantize_model(*model, s, cfg.quant.layers,
                   s.method == QuantMethod::Gptq ? calibration_batches(cfg) : std::vector<Tensor>{});
    group = "quant/" + s.name + "/eval";
  }
  const EvalResult r = evaluate_model(*model, data, cfg);
  log_info(!scheme.empty() ? scheme
           : trained.qat() ? "as trained (" + trained.name() + ")"
                           : "full precision",
           ": ", describe(r));
  RunFileUpdate update(run_file, MPI_COMM_WORLD);  // run.h5 changes only once everything is written
  write_eval(update.file(), group, r);
  if (!ptq) update.file().set_attr(group, "arithmetic", trained.name());
  record_weights_choice(update.file(), group, src, at);
  update.commit();
  if (!logits_file.empty()) write_token_outputs(logits_file, *model, data, cfg, run_dir, scheme);
  return 0;
}

}  // namespace quopt::app
