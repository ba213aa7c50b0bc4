#include "app/config_loader.hpp"

#include <mpi.h>

#include <filesystem>

#include "core/error.hpp"
#include "io/config_agreement.hpp"

namespace quopt::app {

std::string command_text(const CommonArgs& a) {
  std::string s = "quopt";
  for (const auto& x : a.args) s += " " + (x.empty() || x.find(' ') != std::string::npos ? "'" + x + "'" : x);
  return s;
}

LoadedConfig load_config(const CommonArgs& a) {
  QUOPT_CHECK(
      !a.out_given || !a.out.empty(),
      "--out was given an empty directory name; pass --out DIR, or leave --out out to use output.dir");
  Config cfg = Config::load(quopt_schema(), a.config, a.sets);
  if (!a.out.empty()) cfg.set("output.dir", std::filesystem::absolute(a.out).string());
  RunConfig run = make_run_config(cfg);
  run.raw = std::make_shared<const Config>(cfg);
  std::string toml = cfg.to_toml();
  agree_on_config(MPI_COMM_WORLD, a.args, toml);  // every rank runs the same command and config
  return LoadedConfig{std::move(cfg), std::move(run), std::move(toml)};
}

}  // namespace quopt::app
