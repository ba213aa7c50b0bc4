#pragma once
// Validation loss and perplexity of a whole model on a token shard (docs/evaluation.md). The shard is
// read as the trainer's validation reads it (BatchLoader, sequential windows of seq_len + 1 tokens),
// and the loss is the mean next-token cross-entropy in nats, without z-loss even when the model
// trains with one (train/trainer's validation_loss includes it). Perplexity = exp(loss).
#include <cstdint>
#include <vector>

namespace quopt {

class Olmo2;
class TokenShard;

struct ValidationResult {
  double loss = 0.0;         // mean cross-entropy per target token (nats)
  double perplexity = 0.0;   // exp(loss)
  std::int64_t tokens = 0;   // target tokens counted
  std::int64_t windows = 0;  // sequences of seq_len inputs evaluated
  // Mean cross-entropy of each window's target tokens, in window order: the unit a paired bootstrap
  // resamples for a confidence interval of a loss difference between two models on the same windows.
  std::vector<double> window_loss;
};

// Evaluates `max_windows` windows (<= 0: every window of the shard once) in batches of `batch_rows`.
ValidationResult evaluate_validation(const Olmo2& model, const TokenShard& shard, std::int64_t max_windows,
                                     std::int64_t batch_rows);

}  // namespace quopt
