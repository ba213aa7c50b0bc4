#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "app/signals.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "train/trainer.hpp"

namespace quopt::app {

int cmd_train(const CommonArgs& a, const std::string& resume) {
  const LoadedConfig lc = load_config(a);
  QUOPT_CHECK(!lc.run.out_dir.empty(), "no output directory: set output.dir in the config or pass --out DIR");
  TrainOptions opts;
  opts.resolved_toml = lc.toml;
  opts.out_dir = lc.run.out_dir;
  opts.resume = resume == "never" ? "" : resume;
  opts.stop_flag = install_stop_handlers();
  const TrainSummary s = train(lc.run, opts);
  if (s.interrupted) {
    log_info("stopped on a signal after step ", s.last_step, "; checkpoint ", s.checkpoint,
             "; continue with: quopt train ", a.config, " --resume auto",
             a.out.empty() ? "" : " --out " + a.out);
    return kExitInterrupted;
  }
  log_info("wrote ", s.run_file, " and ", lc.run.out_dir, "/metrics.jsonl (",
           static_cast<long long>(s.tokens_per_s), " tokens/s over ", s.seconds, " s, ", s.comm_seconds,
           " s in MPI)");
  if (!s.val_loss.empty())
    log_info("validation loss: first ", s.val_loss.front().second, " (step ", s.val_loss.front().first,
             "), last ", s.val_loss.back().second, " (step ", s.val_loss.back().first, ")");
  return 0;
}

}  // namespace quopt::app
