#include "io/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "core/finite.hpp"
#include "core/log.hpp"
#include "io/owned_tensors.hpp"
#include "optim/optimizer.hpp"
#include "parallel/collective_error.hpp"

namespace fs = std::filesystem;

namespace quopt {

namespace {

constexpr std::int64_t kFormat = 1;

std::string step_name(std::int64_t step) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "step-%08lld.h5", static_cast<long long>(step));
  return buf;
}

// Checkpoint files in dir, newest step first.
std::vector<fs::path> list_checkpoints(const std::string& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".h5") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() > b.filename(); });
  return out;
}

}  // namespace

std::string checkpoint_dir(const std::string& out_dir) {
  return out_dir + "/checkpoints";
}

namespace {

// The tensors a checkpoint holds for this rank.
std::vector<NamedTensor> checkpoint_tensors(const ParameterSet& params, Optimizer& opt, const RunMetrics& m) {
  std::vector<NamedTensor> mine;
  for (const auto& p : params.all()) mine.push_back({"weights/" + p.name, p.value});
  for (auto& s : opt.state()) mine.push_back({"optimizer/" + s.name, s.tensor});
  for (auto& t : metrics_tensors(m)) mine.push_back(std::move(t));
  return mine;
}

// Weights and optimizer state must be finite; the metrics curves may hold NaN (a skipped step's loss).
bool must_be_finite(const std::string& name) {
  return name.rfind("weights/", 0) == 0 || name.rfind("optimizer/", 0) == 0;
}

// Removes what interrupted writes left behind: "<step>.h5.tmp" files (the caller holds the run lock, so
// no other writer is using them).
void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 && n.size() > 7 && n.substr(n.size() - 7) == ".h5.tmp")
      fs::remove(e.path(), ec);
  }
}

}  // namespace

std::string save_checkpoint(const std::string& out_dir, const ProcessGrid& grid, const ParameterSet& params,
                            Optimizer& opt, const RunMetrics& m, const CheckpointMeta& meta,
                            std::int64_t keep) {
  const std::string dir = checkpoint_dir(out_dir);
  const std::string path = dir + "/" + step_name(meta.step), tmp = path + ".tmp";
  const std::vector<NamedTensor> mine = checkpoint_tensors(params, opt, m);
  std::string mkdir_error;
  if (grid.rank() == 0) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) mkdir_error = cat("cannot create checkpoint directory ", dir, ": ", ec.message());
  }
  throw_if_any(grid.world(), mkdir_error);
  H5File f = H5File::create(tmp, grid.world());
  // Never a checkpoint that looks valid but cannot be resumed from: write_owned counts non-finite
  // weights and state while it writes them (one pass over the bytes); then every rank refuses together.
  std::string refused;
  try {
    f.set_attr("/", "format", kFormat);
    f.set_attr("/", "step", meta.step);
    f.set_attr("/", "config", meta.config_toml);
    f.set_attr("/", "resume_history", meta.resume_history);
    f.set_attr("/", "world_size", static_cast<std::int64_t>(grid.size()));
    f.set_attr("/", "pipeline_stages", static_cast<std::int64_t>(grid.stages()));
    f.set_attr("/", "optimizer", opt.name());
    f.set_attr("/", "optimizer_steps", opt.steps_taken());
    const std::string bad = write_owned(f, grid.world(), mine, /*manifest=*/true, must_be_finite);
    refused = first_error(grid.world(), bad.empty() ? "" : cat("not writing checkpoint ", path, ": ", bad));
    if (refused.empty()) {
      f.flush();
      f.set_attr("/", "complete", std::int64_t{1});
      f.close();
    }
  } catch (const Error& e) {
    f.discard();
    fail(e.what(), ". The checkpoint was not written (", tmp, " removed); earlier checkpoints in ", dir,
         " are unchanged: free space (or lower checkpoint.keep) and continue with --resume auto");
  }
  if (!refused.empty()) {
    f.discard();
    throw CollectiveError(refused);
  }
  std::string rename_error;
  if (grid.rank() == 0) {
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) rename_error = cat("cannot rename ", tmp, " to ", path, ": ", ec.message());
    if (!ec) {
      const auto all = list_checkpoints(dir);
      for (std::size_t i = static_cast<std::size_t>(std::max<std::int64_t>(keep, 1)); i < all.size(); ++i)
        fs::remove(all[i], ec);
      remove_stale_temporaries(dir);
    }
  }
  throw_if_any(grid.world(), rename_error);
  return path;
}

std::string verify_checkpoint(const std::string& path) {
  try {
    H5File f = H5File::open_read(path, MPI_COMM_SELF);
    if (!f.has_attr("/", "format") || !f.has_attr("/", "step"))
      return "not a quopt checkpoint (no 'format' and 'step' attributes; quopt train writes checkpoints as "
             "DIR/checkpoints/step-NNNNNNNN.h5)";
    if (!f.has_attr("/", "complete") || f.get_attr_int("/", "complete") != 1) return "not marked complete";
    if (f.get_attr_int("/", "format") != kFormat)
      return cat("unknown checkpoint format ", f.get_attr_int("/", "format"), " (this quopt reads format ",
                 kFormat, ")");
    return verify_manifest(f, [](const std::string& name, const Tensor& t) -> std::string {
      if (!must_be_finite(name)) return "";
      const std::string bad = describe_nonfinite({{name, t}});
      return bad.empty() ? "" : bad + " (the run had diverged when it was written)";
    });
  } catch (const Error& e) {
    return e.what();
  }
}

std::optional<std::string> find_latest_checkpoint(const std::string& out_dir, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string found;
  if (rank == 0) {
    for (const auto& p : list_checkpoints(checkpoint_dir(out_dir))) {
      const std::string why = verify_checkpoint(p.string());
      if (why.empty()) {
        found = p.string();
        break;
      }
      log_warn("skipping checkpoint ", p.string(), ": ", why);
    }
  }
  found = bcast_string(comm, found);
  if (found.empty()) return std::nullopt;
  return found;
}

LoadedCheckpoint load_checkpoint(const std::string& path, MPI_Comm comm, ParameterSet& params, Optimizer& opt,
                                 RunMetrics& m) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string why = bcast_string(comm, rank == 0 ? verify_checkpoint(path) : std::string());
  QUOPT_CHECK(why.empty(), "cannot resume from ", path, ": ", why,
              "; pass another checkpoint to --resume, or --resume auto to take the newest usable one in the "
              "output directory");
  H5File f = H5File::open_read(path, comm);
  QUOPT_CHECK(f.get_attr_string("/", "optimizer") == opt.name(), path, " holds ",
              f.get_attr_string("/", "optimizer"), " state but this run uses optimizer.name = ", opt.name(),
              "; resume with the same optimizer");
  // A mismatch seen by one rank (its pipeline stage's tensors) stops every rank.
  std::string local;
  auto restore = [&](const std::string& name, Tensor& dst, const char* kind, const char* cause) {
    if (!local.empty()) return;
    if (!f.is_dataset(name)) {
      local = cat(path, " has no ", kind, name, ": it was written ", cause);
      return;
    }
    try {
      dst.copy_from(f.read(name, dst.shape(), dst.dtype()));
    } catch (const Error& e) {
      local = cat(e.what(), "; it was written ", cause);
    }
  };
  for (auto& p : params.all())
    restore("weights/" + p.name, p.value, "",
            "for a different model (compare its 'config' attribute with this config's [model])");
  for (auto& s : opt.state())
    restore("optimizer/" + s.name, s.tensor, "optimizer state ", "by a different optimizer configuration");
  throw_if_any(comm, local);
  read_metrics(f, m);
  opt.set_steps_taken(f.get_attr_int("/", "optimizer_steps"));
  LoadedCheckpoint out;
  out.config_toml = f.get_attr_string("/", "config");
  out.resume_history = f.has_attr("/", "resume_history") ? f.get_attr_string("/", "resume_history") : "";
  out.step = f.get_attr_int("/", "step");
  f.close();
  return out;
}

}  // namespace quopt
