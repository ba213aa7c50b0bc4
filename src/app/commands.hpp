#pragma once
// The subcommands of `quopt`. Each returns the process exit code; quopt::Error propagates to main.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace quopt::app {

struct CommonArgs {
  std::string config;             // CONFIG.toml
  std::vector<std::string> sets;  // --set key=value
  std::string out;                // --out DIR (overrides output.dir)
  bool out_given = false;         // --out was on the command line (an empty DIR is an error)
  // The command line after the program name: every rank must have the same (io/config_agreement), and
  // it names the holder of a run directory's lock.
  std::vector<std::string> args;
};

// The command line as one string, for messages ("quopt train run.toml --out runs/a").
std::string command_text(const CommonArgs& a);

int cmd_tokenize(const CommonArgs& a);
// Exit status of a training run stopped by SIGTERM/SIGUSR1 after writing its checkpoint
// (EX_TEMPFAIL from sysexits.h: "try again later", i.e. resume).
inline constexpr int kExitInterrupted = 75;
// allow_change: --allow-config-change KEY... (keys that may differ from the checkpoint's config).
int cmd_train(const CommonArgs& a, const std::string& resume,
              const std::vector<std::string>& allow_change = {});
int cmd_info(const CommonArgs& a);
struct BenchArgs {
  std::int64_t steps = 5;
  std::int64_t warmup = 1;
  std::vector<std::string> optimizers;  // --optimizers: compare these ("all": the six)
  bool gemm_shapes = false;              // --gemm-shapes: also print each GEMM shape's bare sgemm rate
};
int cmd_bench(const CommonArgs& a, const BenchArgs& b);
// Which weights of a run ptq and eval take (--step), and the protocol that chose them; recorded with
// the results as attributes (docs/run-file.md). analyze takes the weights its scheme was quantized from.
struct WeightsChoice {
  std::int64_t step = -1;  // -1: the final weights (run.h5); else a snapshot (io/snapshot.hpp)
  // "final" (the trained model), "common-loss" (the study's: the first validation point at or below
  // the size's common loss), "step" (a step given by hand); empty: "final" or "step" from the step.
  std::string protocol;
  double threshold = std::numeric_limits<double>::quiet_NaN();  // common-loss: the size's common loss
};
// quopt ptq CONFIG --run DIR: quantize DIR/run.h5 with each scheme, evaluate, write /quant/<scheme>.
int cmd_ptq(const CommonArgs& a, const std::string& run_dir, const std::vector<std::string>& schemes,
            const WeightsChoice& at = {});
// quopt eval CONFIG --run DIR [--quant SCHEME] [--logits FILE] [--step N]: validation loss/perplexity and
// task accuracies; with --logits, the model's logits and per-token losses on one validation batch as
// safetensors (eval/token_outputs.hpp).
int cmd_eval(const CommonArgs& a, const std::string& run_dir, const std::string& scheme,
             const std::string& logits_file = "", const WeightsChoice& at = {});
// quopt analyze CONFIG --run DIR --quant SCHEME: outlier metrics and the ABC decomposition of the model
// quantized by ptq (at the step ptq recorded).
int cmd_analyze(const CommonArgs& a, const std::string& run_dir, const std::vector<std::string>& schemes);
// quopt export CONFIG --run DIR --to HF_DIR [--quant SCHEME]: a Hugging Face Olmo2 directory.
int cmd_export(const CommonArgs& a, const std::string& run_dir, const std::string& to,
               const std::string& scheme);
// quopt import HF_DIR --out DIR: a Hugging Face Olmo2 checkpoint as a quopt run directory.
int cmd_import(const std::string& hf_dir, const std::string& out_dir);
int cmd_study_plan(const std::string& study, bool count_only);
// index < 0: every run; stage: train, ptq, analyze or all.
int cmd_study_run(const std::string& study, std::int64_t index, const std::string& stage);

}  // namespace quopt::app
