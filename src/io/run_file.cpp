#include "io/run_file.hpp"

#include <cstdio>
#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "core/finite.hpp"
#include "io/owned_tensors.hpp"
#include "parallel/collective_error.hpp"
#include "quopt/version.hpp"

namespace quopt {

std::string param_dims(ParamRole role) {
  switch (role) {
    case ParamRole::Embedding:
    case ParamRole::Head:
      return "vocab, d_model";
    case ParamRole::Gain:
      return "features";
    case ParamRole::Hidden:
      return "out_features, in_features";
  }
  return "";
}

void write_weights(H5File& f, MPI_Comm comm, const ModelConfig& model, const ParameterSet& params,
                   const std::string& root) {
  std::vector<NamedTensor> mine;
  for (const auto& p : params.all()) mine.push_back({root + "/" + p.name, p.value});
  write_owned(f, comm, mine, /*manifest=*/false);
  for (const auto& spec : olmo2_param_specs(model)) {  // the whole model's, identical on every rank
    const std::string path = root + "/" + spec.name;
    f.set_attr(path, "role", std::string(role_name(spec.role)));
    f.set_attr(path, "dims", param_dims(spec.role));
  }
}

void require_run_file(const H5File& f) {
  QUOPT_CHECK(f.has_attr("/", "config") && f.exists("weights"), f.path(),
              " is not a quopt run file (it has no 'config' attribute and /weights group); quopt train "
              "writes DIR/run.h5: point --run at such a run directory");
}

void read_weights(const H5File& f, ParameterSet& params, const std::string& root) {
  require_run_file(f);
  for (auto& p : params.all()) {
    const std::string path = root + "/" + p.name;
    QUOPT_CHECK(f.exists(path), f.path(), " has no dataset /", path,
                ": it was written for a different model config (compare its 'config' attribute with this "
                "config's [model])");
    Tensor t = f.read(path, p.value.shape(), p.value.dtype());
    const std::string bad = describe_nonfinite({{"/" + path, t}});
    QUOPT_CHECK(bad.empty(), f.path(), ": ", bad,
                "; the run diverged before this file was written, or the file was modified. Retrain it "
                "(quopt train --resume auto continues from the newest finite checkpoint)");
    p.value.copy_from(t);
  }
}

namespace {
template <class T>
Tensor curve(const std::vector<T>& v) {
  Tensor t = Tensor::empty({static_cast<std::int64_t>(v.size())}, DType::F64);
  for (std::size_t i = 0; i < v.size(); ++i) t.data<double>()[i] = static_cast<double>(v[i]);
  return t;
}
template <class T>
void uncurve(const Tensor& t, std::vector<T>& v) {
  v.resize(static_cast<std::size_t>(t.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(t.data<double>()[i]);
}
}  // namespace

std::vector<NamedTensor> metrics_tensors(const RunMetrics& m) {
  std::vector<NamedTensor> out = {
      {"metrics/train_step", curve(m.step)},     {"metrics/tokens", curve(m.tokens)},
      {"metrics/train_loss", curve(m.loss)},     {"metrics/lr", curve(m.lr)},
      {"metrics/grad_norm", curve(m.grad_norm)}, {"metrics/val_step", curve(m.val_step)},
      {"metrics/val_loss", curve(m.val_loss)}};
  for (const auto& [name, v] : m.extra) out.push_back({"metrics/" + name, curve(v)});
  return out;
}

void read_metrics(const H5File& f, RunMetrics& m) {
  uncurve(f.read("metrics/train_step"), m.step);
  uncurve(f.read("metrics/tokens"), m.tokens);
  uncurve(f.read("metrics/train_loss"), m.loss);
  uncurve(f.read("metrics/lr"), m.lr);
  uncurve(f.read("metrics/grad_norm"), m.grad_norm);
  uncurve(f.read("metrics/val_step"), m.val_step);
  uncurve(f.read("metrics/val_loss"), m.val_loss);
  static const std::set<std::string> kFixed = {"train_step", "tokens",   "train_loss", "lr",
                                               "grad_norm",  "val_step", "val_loss"};
  m.extra.clear();
  for (const auto& name : f.list("metrics"))
    if (!kFixed.count(name)) uncurve(f.read("metrics/" + name), m.extra[name]);
}

void write_run_file(const std::string& path, MPI_Comm comm, const RunInfo& info, const ParameterSet& params,
                    const RunMetrics& m) {
  const std::string tmp = path + ".tmp";
  H5File f = H5File::create(tmp, comm);
  try {
    f.set_attr("/", "quopt_version", std::string(kVersion));
    f.set_attr("/", "git_revision", std::string(kGitRevision));
    f.set_attr("/", "seed", static_cast<std::int64_t>(info.seed));
    f.set_attr("/", "world_size", static_cast<std::int64_t>(info.world_size));
    f.set_attr("/", "config", info.config_toml);
    if (!info.resume_history.empty()) f.set_attr("/", "resume_history", info.resume_history);
    f.set_attr("/", "model_name", info.model.name);
    f.set_attr("/", "parameters", info.model.total_params());
    f.set_attr("/", "non_embedding_parameters", info.model.non_embedding_params());
    write_weights(f, comm, info.model, params);
    for (const auto& t : metrics_tensors(m)) f.write_tensor(t.name, t.tensor, 0);
    f.set_attr(
        "metrics", "description",
        std::string("train_* per optimizer step (loss = mean cross-entropy incl. z-loss over the global "
                    "batch); val_* at each validation"));
    f.close();
  } catch (const Error& e) {
    f.discard();
    fail(e.what(), ". ", path, " was not written (", tmp,
         " removed); the run's checkpoints are unchanged: free space and run the same command with --resume "
         "auto to write it");
  }
  rename_completed(comm, tmp, path);
}

void rename_completed(MPI_Comm comm, const std::string& from, const std::string& to) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string rename_error;
  if (rank == 0) {
    std::error_code ec;
    std::filesystem::rename(from, to, ec);
    if (ec) rename_error = cat("cannot rename ", from, " to ", to, ": ", ec.message());
  }
  throw_if_any(comm, rename_error);
}

}  // namespace quopt
