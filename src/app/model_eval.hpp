#pragma once
// What `quopt eval` and `quopt ptq` share: loading a trained model from its run file, the evaluation
// data (validation shard, tokenizer, tasks), evaluating a model and writing the results.
#include <memory>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "eval/multiple_choice.hpp"
#include "eval/validation.hpp"
#include "io/h5file.hpp"
#include "io/run_config.hpp"
#include "io/snapshot.hpp"
#include "io/token_shard.hpp"
#include "io/tokenizer.hpp"
#include "model/olmo2.hpp"

namespace quopt::app {

// A whole model (f32) computing as it was trained (a QAT run's model runs its QuEST quantizer, read from
// run_file: app/trained_arithmetic.hpp), with the weights of `weights_file`: a snapshot of the run (same
// /weights layout, io/snapshot.hpp) or, when empty, run_file itself.
std::unique_ptr<Olmo2> load_trained_model(const RunConfig& cfg, const std::string& run_file,
                                          const std::string& weights_file = {});

// Collective: step, final_step, train_tokens, protocol, train_val_loss (the trainer's validation loss at that step) and,
// when finite, threshold as attributes of `group`.
void record_weights_choice(H5File& f, const std::string& group, const WeightsSource& w,
                           const WeightsChoice& c);

struct EvalData {
  TokenShard val;
  std::unique_ptr<Tokenizer> tokenizer;                               // null when data.tokenizer is unset
  std::vector<std::pair<std::string, std::vector<McExample>>> tasks;  // (name, examples)
};
// Loads the validation shard, the tokenizer and the tasks (eval.tasks files, plus the built-in
// continuation task from the validation shard when eval.builtin_examples > 0 and a tokenizer exists).
EvalData load_eval_data(const RunConfig& cfg);

struct EvalResult {
  ValidationResult val;
  std::vector<TaskResult> tasks;
};
EvalResult evaluate_model(const Olmo2& model, const EvalData& data, const RunConfig& cfg);
std::string describe(const EvalResult& r);

// The calibration batches (quant.calibration_batches of train.micro_batch_size sequences from the
// training shard, shuffled with a seed distinct from training's): GPTQ's inputs and the batch the
// analysis and the recorded activations use (the first one).
std::vector<Tensor> calibration_batches(const RunConfig& cfg);

// Rank 0 writes the model's outputs on the first validation batch (train.micro_batch_size windows) to
// `path` as safetensors: tokens, targets (i32 [W, T]), logits (f32 [W, T, V]), loss (f32 [W, T]), with
// the run, scheme and config in the metadata.
void write_token_outputs(const std::string& path, const Olmo2& model, const EvalData& data,
                         const RunConfig& cfg, const std::string& run_dir, const std::string& scheme);

// Collective: writes val_loss, perplexity, tokens as attributes of `group`, the per-window losses as
// group/window_loss, and each task's acc, acc_norm, n as attributes of group/tasks/<name> with the
// per-example outcomes (1 right, 0 wrong) as its datasets correct and correct_norm (replacing what is
// there). The per-window and per-example data let the report put confidence intervals on differences.
void write_eval(H5File& f, const std::string& group, const EvalResult& r);

}  // namespace quopt::app
