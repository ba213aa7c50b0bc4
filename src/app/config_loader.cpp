#include "app/config_loader.hpp"

#include <filesystem>

namespace quopt::app {

LoadedConfig load_config(const CommonArgs& a) {
  Config cfg = Config::load(quopt_schema(), a.config, a.sets);
  if (!a.out.empty()) cfg.set("output.dir", std::filesystem::absolute(a.out).string());
  RunConfig run = make_run_config(cfg);
  run.raw = std::make_shared<const Config>(cfg);
  std::string toml = cfg.to_toml();
  return LoadedConfig{std::move(cfg), std::move(run), std::move(toml)};
}

}  // namespace quopt::app
