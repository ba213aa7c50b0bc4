#pragma once
// What may change when a run resumes from a checkpoint. The checkpoint stores the resolved config it was
// written with; a resume compares it key by key with the config given now. Keys that do not change what
// the run computes up to its end (how long it runs, how often it logs, validates and checkpoints, where
// it writes, how it is spread over ranks, the settings of the later commands ptq/eval/analyze) may
// change freely; every other change (a seed, a learning rate, the model, the data, another run's
// checkpoint) is an error naming the keys, unless the user allows that key explicitly
// (--allow-config-change KEY), in which case the change is recorded in the checkpoints and run.h5
// (attribute resume_history). The list is in docs/reliability.md.
#include <cstdint>
#include <string>
#include <vector>

#include "io/config.hpp"

namespace quopt {

// The keys (or "section." prefixes) that may change on resume.
const std::vector<std::string>& resume_mutable_keys();
bool may_change_on_resume(const std::string& key);

struct ConfigChange {
  std::string key;
  std::string before, after;     // TOML text of the values
  bool allowed_by_flag = false;  // accepted because of --allow-config-change (not a mutable key)
};

// Key-by-key differences between two resolved configs, in schema order.
std::vector<ConfigChange> config_differences(const Config& before, const Config& after);

// Compares the checkpoint's resolved config (TOML text) with this run's. Returns the accepted changes;
// throws quopt::Error naming every key that changed without being allowed, with both values and the fix.
// `allowed` holds the keys given with --allow-config-change (each must be a known key).
std::vector<ConfigChange> check_resume_config(const std::string& checkpoint_toml,
                                              const std::string& checkpoint_path, const Config& now,
                                              const std::vector<std::string>& allowed);

// One line for the resume history: "resumed at step S from PATH: key a -> b (may change on resume); ...".
std::string describe_resume(std::int64_t step, const std::string& checkpoint_path,
                            const std::vector<ConfigChange>& changes);

}  // namespace quopt
