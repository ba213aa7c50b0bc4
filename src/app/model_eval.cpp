#include "app/model_eval.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "app/trained_arithmetic.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "eval/builtin_task.hpp"
#include "eval/task.hpp"
#include "eval/token_outputs.hpp"
#include "io/calibration.hpp"
#include "io/run_file.hpp"
#include "io/safetensors.hpp"

namespace quopt::app {

std::unique_ptr<Olmo2> load_trained_model(const RunConfig& cfg, const std::string& run_file,
                                          const std::string& weights_file) {
  QUOPT_CHECK(std::filesystem::exists(run_file), "no run file ", run_file,
              ": train first (quopt train ... --out DIR) or point --run at a run directory");
  const std::string& from = weights_file.empty() ? run_file : weights_file;
  QUOPT_CHECK(std::filesystem::exists(from), "no weights file ", from, " of the run in ", run_file);
  auto model = std::make_unique<Olmo2>(cfg.model, DType::F32);
  H5File f = H5File::open_read(from, MPI_COMM_WORLD);
  read_weights(f, model->params());
  f.close();
  model->set_linear_quant(read_trained_arithmetic(run_file, cfg).linear_quant());  // a QAT run as trained
  return model;
}

void record_weights_choice(H5File& f, const std::string& group, const WeightsSource& w,
                           const WeightsChoice& c) {
  const std::string protocol = !c.protocol.empty() ? c.protocol : w.is_final ? "final" : "step";
  f.set_attr(group, "step", w.step);
  f.set_attr(group, "final_step", w.final_step);
  f.set_attr(group, "train_tokens", w.tokens);
  f.set_attr(group, "protocol", protocol);
  f.set_attr(group, "train_val_loss", w.train_val_loss);
  if (std::isfinite(c.threshold)) f.set_attr(group, "threshold", c.threshold);
}

EvalData load_eval_data(const RunConfig& cfg) {
  QUOPT_CHECK(!cfg.data.val.empty(),
              "data.val is not set: point it at a token shard made by `quopt tokenize`");
  EvalData d{TokenShard::open(cfg.data.val), nullptr, {}};
  if (!cfg.data.tokenizer.empty())
    d.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(cfg.data.tokenizer));
  if (cfg.eval.builtin_examples > 0 && d.tokenizer) {
    // seed: fixed so every model of a study is scored on the same examples (quopt choice)
    d.tasks.emplace_back("continuation",
                         builtin_continuation_task(d.val, *d.tokenizer, cfg.eval.builtin_examples, 1234));
  }
  for (const auto& path : cfg.eval.tasks) {
    QUOPT_CHECK(d.tokenizer,
                "eval.tasks needs data.tokenizer (the SentencePiece model made by quopt tokenize)");
    d.tasks.emplace_back(std::filesystem::path(path).stem().string(), load_task_jsonl(path));
  }
  return d;
}

std::vector<Tensor> calibration_batches(const RunConfig& cfg) {
  const TokenShard train = TokenShard::open(cfg.data.train);
  std::vector<Tensor> out;
  const std::int64_t rows = cfg.train.micro_batch_size;
  for (std::int64_t b = 0; b < cfg.quant.calibration_batches; ++b) {
    Tensor in, tgt;
    load_calibration_batch(train, cfg.model.seq_len, cfg.train.seed, b, rows, in, tgt);
    out.push_back(in);
  }
  return out;
}

EvalResult evaluate_model(const Olmo2& model, const EvalData& data, const RunConfig& cfg) {
  EvalResult r;
  const std::int64_t rows = cfg.train.micro_batch_size;
  r.val = evaluate_validation(model, data.val, cfg.eval.val_batches * rows, rows);
  for (const auto& [name, examples] : data.tasks) {
    McOptions o;
    o.name = name;
    o.keep_examples = true;  // per-example outcomes for paired confidence intervals (write_eval)
    r.tasks.push_back(evaluate_task(model, *data.tokenizer, examples, rows, o));
  }
  return r;
}

std::string describe(const EvalResult& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "val loss %.4f, perplexity %.2f (%lld tokens)", r.val.loss, r.val.perplexity,
                static_cast<long long>(r.val.tokens));
  std::string s = buf;
  for (const auto& t : r.tasks) {
    std::snprintf(buf, sizeof buf, "; %s acc %.4f acc_norm %.4f (n=%lld)", t.name.c_str(), t.acc, t.acc_norm,
                  static_cast<long long>(t.n));
    s += buf;
  }
  return s;
}

void write_token_outputs(const std::string& path, const Olmo2& model, const EvalData& data,
                         const RunConfig& cfg, const std::string& run_dir, const std::string& scheme) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    const TokenOutputs o =
        model_token_outputs(model, data.val, cfg.train.micro_batch_size, cfg.train.micro_batch_size);
    SafetensorsWriter w;
    w.add("tokens", o.tokens);
    w.add("targets", o.targets);
    w.add("logits", o.logits);
    w.add("loss", o.loss);
    w.set_metadata("run", run_dir);
    w.set_metadata("quant", scheme.empty() ? "none" : scheme);
    w.set_metadata("val", cfg.data.val);
    w.write(path);
    log_info("wrote logits and per-token losses of ", o.tokens.dim(0), " validation windows of ",
             o.tokens.dim(1), " tokens to ", path);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

void write_eval(H5File& f, const std::string& group, const EvalResult& r) {
  if (f.exists(group)) f.remove(group);
  f.create_group(group);
  f.set_attr(group, "val_loss", r.val.loss);
  f.set_attr(group, "perplexity", r.val.perplexity);
  f.set_attr(group, "tokens", r.val.tokens);
  const auto n_windows = static_cast<std::int64_t>(r.val.window_loss.size());
  Tensor wl = Tensor::empty({n_windows}, DType::F64);
  std::copy(r.val.window_loss.begin(), r.val.window_loss.end(), wl.data<double>());
  f.write_tensor(group + "/window_loss", wl, 0);
  for (const auto& t : r.tasks) {
    const std::string g = group + "/tasks/" + t.name;
    f.create_group(g);
    f.set_attr(g, "acc", t.acc);
    f.set_attr(g, "acc_norm", t.acc_norm);
    f.set_attr(g, "n", t.n);
    const auto n = static_cast<std::int64_t>(t.examples.size());
    Tensor right = Tensor::empty({n}, DType::I32), right_norm = Tensor::empty({n}, DType::I32);
    for (std::int64_t i = 0; i < n; ++i) {
      const ExampleScore& e = t.examples[static_cast<std::size_t>(i)];
      right.data<std::int32_t>()[i] = e.pred == e.label ? 1 : 0;
      right_norm.data<std::int32_t>()[i] = e.pred_norm == e.label ? 1 : 0;
    }
    f.write_tensor(g + "/correct", right, 0);
    f.write_tensor(g + "/correct_norm", right_norm, 0);
  }
}

}  // namespace quopt::app
