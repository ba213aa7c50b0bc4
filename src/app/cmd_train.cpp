#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "train/trainer.hpp"

namespace quopt::app {

int cmd_train(const CommonArgs& a) {
  const LoadedConfig lc = load_config(a);
  const std::string& dir = lc.run.out_dir;
  QUOPT_CHECK(!dir.empty(), "no output directory: set output.dir in the config or pass --out DIR");
  const TrainSummary s = train(lc.run, lc.toml, dir);
  log_info("wrote ", s.run_file, " and ", dir, "/metrics.jsonl (", static_cast<long long>(s.tokens_per_s),
           " tokens/s over ", s.seconds, " s)");
  if (!s.val_loss.empty())
    log_info("validation loss: first ", s.val_loss.front().second, " (step ", s.val_loss.front().first,
             "), last ", s.val_loss.back().second, " (step ", s.val_loss.back().first, ")");
  return 0;
}

}  // namespace quopt::app
