#include "io/resume_config.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace quopt {

const std::vector<std::string>& resume_mutable_keys() {
  // How long the run goes on (train.steps, or tokens_per_param when steps = 0, moves the end of the
  // schedule: the change applies from the resumed step on), how often it logs, validates and checkpoints,
  // where it writes, how the ranks are arranged (checkpoints reshard; results agree to rounding), the
  // watchdog, the divergence policy, where it computes (train.device, train.precision: the same step in
  // another arithmetic; checkpoints are written from host copies, so a GPU run resumes on the CPU and the
  // reverse), and the keys only tokenize/ptq/eval/analyze read.
  static const std::vector<std::string> keys = {"train.steps",
                                                "train.tokens_per_param",
                                                "train.log_every",
                                                "train.val_every",
                                                "track.every",
                                                "train.max_nonfinite_skips",
                                                "train.device",
                                                "train.precision",
                                                "checkpoint.",
                                                "output.dir",
                                                "parallel.",
                                                "tokenize.",
                                                "eval.",
                                                "data.tokenizer",
                                                "quant.schemes",
                                                "quant.calibration_batches",
                                                "quant.record_rows"};
  return keys;
}

bool may_change_on_resume(const std::string& key) {
  for (const auto& k : resume_mutable_keys()) {
    if (k.back() == '.' ? key.rfind(k, 0) == 0 : key == k) return true;
  }
  return false;
}

std::vector<ConfigChange> config_differences(const Config& before, const Config& after) {
  std::vector<ConfigChange> out;
  for (const auto& key : after.schema().keys()) {
    const std::string a = config_value_to_toml(before.get(key)), b = config_value_to_toml(after.get(key));
    if (a != b) out.push_back({key, a, b, false});
  }
  return out;
}

std::vector<ConfigChange> check_resume_config(const std::string& checkpoint_toml,
                                              const std::string& checkpoint_path, const Config& now,
                                              const std::vector<std::string>& allowed) {
  for (const auto& k : allowed) now.schema().index(k);  // an unknown key is an error with a hint
  Config before = Config::defaults(now.schema());
  try {
    before = Config::from_toml_string(now.schema(), checkpoint_toml, checkpoint_path + " (attribute config)");
  } catch (const Error& e) {
    fail("cannot compare the config of ", checkpoint_path, " with this run's: ", e.what(),
         "; it was written by another quopt version or is not this run's checkpoint");
  }
  std::vector<ConfigChange> changes = config_differences(before, now);
  std::string refused;
  std::vector<std::string> refused_keys;
  for (auto& c : changes) {
    if (may_change_on_resume(c.key)) continue;
    if (std::find(allowed.begin(), allowed.end(), c.key) != allowed.end()) {
      c.allowed_by_flag = true;
      continue;
    }
    refused += cat("\n  ", c.key, ": ", c.before, " in the checkpoint, ", c.after, " now");
    refused_keys.push_back(c.key);
  }
  if (!refused.empty()) {
    std::string flags;
    for (const auto& k : refused_keys) flags += " --allow-config-change " + k;
    fail("cannot resume from ", checkpoint_path,
         ": the config differs from the one the checkpoint was written with:", refused,
         "\nResume with the checkpoint's config (it is stored in the checkpoint and in run.h5), start a new "
         "run "
         "in another directory, or accept the change explicitly with",
         flags, " (recorded in run.h5). Keys that may change on resume: docs/reliability.md.");
  }
  return changes;
}

std::string describe_resume(std::int64_t step, const std::string& checkpoint_path,
                            const std::vector<ConfigChange>& changes) {
  std::string s = cat("resumed at step ", step, " from ", checkpoint_path, ":");
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    s += cat(i ? "; " : " ", c.key, " ", c.before, " -> ", c.after,
             c.allowed_by_flag ? " (--allow-config-change)" : " (may change on resume)");
  }
  return s;
}

}  // namespace quopt
