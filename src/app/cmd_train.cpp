#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "app/signals.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "train/trainer.hpp"

namespace quopt::app {

int cmd_train(const CommonArgs& a, const std::string& resume, const std::vector<std::string>& allow_change) {
  const LoadedConfig lc = load_config(a);
  QUOPT_CHECK(!lc.run.out_dir.empty(), "no output directory: set output.dir in the config or pass --out DIR");
  TrainOptions opts;
  opts.resolved_toml = lc.toml;
  opts.out_dir = lc.run.out_dir;
  opts.resume = resume == "never" ? "" : resume;
  opts.allow_config_change = allow_change;
  opts.command = command_text(a);
  opts.stop_flag = install_stop_handlers();  // already installed by main(); returns the same flag
  TrainSummary s;
  try {
    s = train(lc.run, opts);
  } catch (const OutOfMemory& e) {
    const RunConfig& r = lc.run;
    fail(e.what(), " while setting up training: the model's ", r.model.total_params(),
         " parameters, their gradients and optimizer state (model.d_model, model.n_layers, model.vocab_size; "
         "optimizer.name = ",
         r.optimizer.name,
         ") and the buffers of one micro-batch (train.micro_batch_size = ", r.train.micro_batch_size,
         " sequences x model.seq_len = ", r.model.seq_len,
         " tokens). Lower train.micro_batch_size (gradient accumulation keeps train.batch_size) or the model "
         "size, or split the model over more ranks (parallel.pipeline_stages)");
  }
  if (s.interrupted) {
    log_info("stopped on a signal after step ", s.last_step, "; checkpoint ", s.checkpoint,
             "; continue with: quopt train ", a.config, " --resume auto", a.out.empty() ? "" : " --out " + a.out);
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
