#include "io/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "core/log.hpp"
#include "io/owned_tensors.hpp"
#include "optim/optimizer.hpp"

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

std::string save_checkpoint(const std::string& out_dir, const ProcessGrid& grid, const ParameterSet& params,
                            Optimizer& opt, const RunMetrics& m, const CheckpointMeta& meta,
                            std::int64_t keep) {
  const std::string dir = checkpoint_dir(out_dir);
  if (grid.rank() == 0) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    QUOPT_CHECK(!ec, "cannot create checkpoint directory ", dir, ": ", ec.message());
  }
  MPI_Barrier(grid.world());
  const std::string path = dir + "/" + step_name(meta.step), tmp = path + ".tmp";
  std::vector<NamedTensor> mine;
  for (const auto& p : params.all()) mine.push_back({"weights/" + p.name, p.value});
  for (auto& s : opt.state()) mine.push_back({"optimizer/" + s.name, s.tensor});
  for (auto& t : metrics_tensors(m)) mine.push_back(std::move(t));
  {
    H5File f = H5File::create(tmp, grid.world());
    f.set_attr("/", "format", kFormat);
    f.set_attr("/", "step", meta.step);
    f.set_attr("/", "config", meta.config_toml);
    f.set_attr("/", "world_size", static_cast<std::int64_t>(grid.size()));
    f.set_attr("/", "pipeline_stages", static_cast<std::int64_t>(grid.stages()));
    f.set_attr("/", "optimizer", opt.name());
    f.set_attr("/", "optimizer_steps", opt.steps_taken());
    write_owned(f, grid.world(), mine, /*manifest=*/true);
    f.flush();
    f.set_attr("/", "complete", std::int64_t{1});
    f.close();
  }
  if (grid.rank() == 0) {
    std::error_code ec;
    fs::rename(tmp, path, ec);
    QUOPT_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
    const auto all = list_checkpoints(dir);
    for (std::size_t i = static_cast<std::size_t>(std::max<std::int64_t>(keep, 1)); i < all.size(); ++i)
      fs::remove(all[i], ec);
  }
  MPI_Barrier(grid.world());
  return path;
}

std::optional<std::string> find_latest_checkpoint(const std::string& out_dir, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string found;
  if (rank == 0) {
    for (const auto& p : list_checkpoints(checkpoint_dir(out_dir))) {
      std::string why;
      try {
        H5File f = H5File::open_read(p.string(), MPI_COMM_SELF);
        if (!f.has_attr("/", "complete") || f.get_attr_int("/", "complete") != 1)
          why = "not marked complete";
        else if (f.get_attr_int("/", "format") != kFormat)
          why = "unknown checkpoint format";
        else
          why = verify_manifest(f);
      } catch (const Error& e) {
        why = e.what();
      }
      if (why.empty()) {
        found = p.string();
        break;
      }
      log_warn("skipping checkpoint ", p.string(), ": ", why);
    }
  }
  int len = static_cast<int>(found.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, comm);
  found.resize(static_cast<std::size_t>(len));
  MPI_Bcast(found.data(), len, MPI_CHAR, 0, comm);
  if (found.empty()) return std::nullopt;
  return found;
}

std::int64_t load_checkpoint(const std::string& path, MPI_Comm comm, ParameterSet& params, Optimizer& opt,
                             RunMetrics& m, std::string* config_toml) {
  H5File f = H5File::open_read(path, comm);
  QUOPT_CHECK(f.get_attr_string("/", "optimizer") == opt.name(), path, " holds ",
              f.get_attr_string("/", "optimizer"), " state but this run uses optimizer.name = ", opt.name(),
              "; resume with the same optimizer");
  for (auto& p : params.all()) {
    const std::string name = "weights/" + p.name;
    QUOPT_CHECK(f.is_dataset(name), path, " has no ", name, ": it was written for a different model");
    Tensor t = f.read(name, p.value.shape(), p.value.dtype());
    p.value.copy_from(t);
  }
  for (auto& s : opt.state()) {
    const std::string name = "optimizer/" + s.name;
    QUOPT_CHECK(f.is_dataset(name), path, " has no optimizer state ", name,
                ": it was written by a different optimizer configuration");
    Tensor t = f.read(name, s.tensor.shape(), s.tensor.dtype());
    s.tensor.copy_from(t);
  }
  read_metrics(f, m);
  opt.set_steps_taken(f.get_attr_int("/", "optimizer_steps"));
  if (config_toml) *config_toml = f.get_attr_string("/", "config");
  const std::int64_t step = f.get_attr_int("/", "step");
  f.close();
  return step;
}

}  // namespace quopt
