#include "io/snapshot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "core/error.hpp"
#include "io/h5file.hpp"
#include "io/run_file.hpp"
#include "quopt/version.hpp"

namespace fs = std::filesystem;

namespace quopt {

namespace {

constexpr const char* kPrefix = "step-";
constexpr const char* kSuffix = ".h5";

// The step of "step-NNNNNNNN.h5", or -1 for any other name.
std::int64_t step_of(const std::string& name) {
  const std::string pre = kPrefix, suf = kSuffix;
  if (name.size() <= pre.size() + suf.size() || name.rfind(pre, 0) != 0 ||
      name.compare(name.size() - suf.size(), suf.size(), suf) != 0)
    return -1;
  const std::string digits = name.substr(pre.size(), name.size() - pre.size() - suf.size());
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  return std::stoll(digits);
}

std::string join_steps(const std::vector<std::int64_t>& steps) {
  if (steps.empty()) return "none";
  std::string s;
  for (auto v : steps) s += (s.empty() ? "" : ", ") + std::to_string(v);
  return s;
}

double val_loss_at(const RunMetrics& m, std::int64_t step) {
  for (std::size_t i = 0; i < m.val_step.size(); ++i)
    if (m.val_step[i] == step) return m.val_loss[i];
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

std::string snapshot_dir(const std::string& run_dir) {
  return run_dir + "/snapshots";
}

std::string snapshot_path(const std::string& run_dir, std::int64_t step) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%08lld%s", kPrefix, static_cast<long long>(step), kSuffix);
  return snapshot_dir(run_dir) + "/" + buf;
}

bool snapshot_wanted(const SnapshotConfig& c, std::int64_t step, std::int64_t total_steps,
                     const std::vector<double>& val_loss) {
  if (!c.enabled || step >= total_steps || val_loss.empty()) return false;
  if (static_cast<double>(step) < c.after_fraction * static_cast<double>(total_steps)) return false;
  const double now = val_loss.back();
  if (!std::isfinite(now)) return false;
  for (std::size_t i = 0; i + 1 < val_loss.size(); ++i)
    if (!(now < val_loss[i])) return false;  // not a strict new minimum
  return true;
}

void write_snapshot(const std::string& run_dir, MPI_Comm comm, const ModelConfig& model,
                    const ParameterSet& params, const SnapshotInfo& info) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string dir = snapshot_dir(run_dir);
  if (rank == 0) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    QUOPT_CHECK(!ec, "cannot create the snapshot directory ", dir, ": ", ec.message());
  }
  MPI_Barrier(comm);
  const std::string path = snapshot_path(run_dir, info.step), tmp = path + ".tmp";
  {
    H5File f = H5File::create(tmp, comm);
    f.set_attr("/", "step", info.step);
    f.set_attr("/", "val_loss", info.val_loss);
    f.set_attr("/", "tokens", info.tokens);
    f.set_attr("/", "config", info.config_toml);
    f.set_attr("/", "model_name", model.name);
    f.set_attr("/", "created_by", std::string("quopt ") + kVersion + " (" + kGitRevision + ") train");
    write_weights(f, comm, model, params);
    f.close();
  }
  if (rank == 0) {
    std::error_code ec;
    fs::rename(tmp, path, ec);
    QUOPT_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
  }
  MPI_Barrier(comm);
}

std::vector<std::int64_t> list_snapshots(const std::string& run_dir) {
  std::vector<std::int64_t> out;
  std::error_code ec;
  const std::string dir = snapshot_dir(run_dir);
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::int64_t s = step_of(e.path().filename().string());
    if (s >= 0) out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  return out;
}

WeightsSource locate_weights(const std::string& run_dir, std::int64_t step, MPI_Comm comm) {
  WeightsSource w;
  const std::string run_file = run_dir + "/run.h5";
  QUOPT_CHECK(fs::exists(run_file), "no run file ", run_file,
              ": train first (quopt train ... --out DIR) or point --run at a run directory");
  std::string config;
  RunMetrics m;
  {
    H5File f = H5File::open_read(run_file, comm);
    read_metrics(f, m);
    config = f.get_attr_string("/", "config");
  }
  if (m.step.empty()) {  // not trained by quopt (quopt import): its weights, at no known step
    QUOPT_CHECK(step < 0, "--step ", step, ": ", run_file,
                " records no training step (/metrics/train_step is empty: an imported model?); it has only its "
                "final weights, so leave out --step");
    w.file = run_file;
    w.step = w.final_step = -1;
    w.train_val_loss = std::numeric_limits<double>::quiet_NaN();
    return w;
  }
  w.final_step = m.step.back();
  w.step = step < 0 ? w.final_step : step;
  w.is_final = w.step == w.final_step;
  w.train_val_loss = val_loss_at(m, w.step);
  for (std::size_t i = 0; i < m.step.size(); ++i)
    if (m.step[i] == w.step) w.tokens = m.tokens[i];
  if (w.is_final) {
    w.file = run_file;
    return w;
  }
  QUOPT_CHECK(w.step < w.final_step, "--step ", w.step, " is past the end of the run in ", run_dir,
              " (its last step is ", w.final_step, ")");
  w.file = snapshot_path(run_dir, w.step);
  QUOPT_CHECK(fs::exists(w.file), run_dir, " has no weights of step ", w.step, ": snapshots exist for steps ",
              join_steps(list_snapshots(run_dir)), " and the final weights are step ", w.final_step,
              "; train with snapshot.enabled = true to keep the weights at validation points (only those "
              "where the validation loss reached a new minimum are kept)");
  H5File s = H5File::open_read(w.file, comm);
  QUOPT_CHECK(s.has_attr("/", "config") && s.get_attr_string("/", "config") == config, w.file,
              " does not belong to the run in ", run_file,
              " (its config attribute differs): it is left over from another run in the same directory; "
              "remove ",
              snapshot_dir(run_dir), " and train again");
  QUOPT_CHECK(s.get_attr_int("/", "step") == w.step, w.file, " holds step ", s.get_attr_int("/", "step"),
              ", not ", w.step, " as its name says");
  return w;
}

}  // namespace quopt
