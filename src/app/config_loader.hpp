#pragma once
#include <string>

#include "app/commands.hpp"
#include "io/config.hpp"
#include "io/run_config.hpp"

namespace quopt::app {

struct LoadedConfig {
  Config cfg;
  RunConfig run;
  std::string toml;  // fully resolved, as stored in run files
};

// Loads CONFIG with its includes and --set overrides, applies --out, validates everything. Throws
// quopt::Error before anything is written when the config is rejected.
LoadedConfig load_config(const CommonArgs& a);

}  // namespace quopt::app
