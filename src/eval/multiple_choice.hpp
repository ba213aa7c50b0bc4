#pragma once
// Zero-shot multiple-choice scoring the way lm-evaluation-harness (EleutherAI) scores
// `output_type: multiple_choice` tasks (docs/evaluation.md):
//  - each choice is the continuation target_delimiter + choice (harness default delimiter " ");
//  - tokens as the harness's _encode_pair: trailing whitespace of the context moves to the front of
//    the continuation; whole = encode(context + continuation), ctx = encode(context),
//    continuation tokens = whole[len(ctx):]; the model reads ctx + continuation tokens. An empty
//    context is replaced by [EOS] (the harness uses its end-of-text token the same way);
//  - a sequence of more than seq_len + 1 tokens keeps its last seq_len + 1 (truncation from the left,
//    as the harness does); a continuation longer than seq_len cannot be scored and is an error;
//  - loglik(choice) = sum over its tokens of log p(token | everything before), cross-entropy only
//    (a model's z-loss, if any, is removed);
//  - acc = [argmax_i loglik_i == label], acc_norm = [argmax_i loglik_i / bytes_i == label] with bytes_i
//    the UTF-8 length of choice i without the delimiter (the harness divides by len() of the Python
//    string, i.e. code points: identical for ASCII text); ties go to the lowest index (numpy argmax).
// Choices are scored in batches of rows padded on the right (target -1), longest first.
#include <cstdint>
#include <string>
#include <vector>

#include "eval/task.hpp"

namespace quopt {

class Olmo2;
class Tokenizer;

struct McOptions {
  std::string name = "task";  // copied into TaskResult::name
  // lm-evaluation-harness's default target_delimiter (api/task.py TaskConfig: target_delimiter = " ").
  std::string target_delimiter = " ";
  bool keep_examples = false;  // fill TaskResult::examples (per-example log-likelihoods)
};

struct ExampleScore {
  std::string id;
  std::int64_t label = 0, pred = 0, pred_norm = 0;
  std::vector<double> loglik;            // summed log-likelihood of each choice
  std::vector<std::int64_t> num_tokens;  // scored tokens of each choice
  std::vector<std::int64_t> num_bytes;   // acc_norm denominators
};

struct TaskResult {
  std::string name;
  double acc = 0.0, acc_norm = 0.0;
  // Standard errors of the means as the harness reports them (sample std / sqrt(n)).
  double acc_stderr = 0.0, acc_norm_stderr = 0.0;
  std::int64_t n = 0;
  std::int64_t truncated = 0;          // choice sequences whose context was cut on the left to fit seq_len
  std::vector<ExampleScore> examples;  // only with McOptions::keep_examples
};

// One scoring request: the tokens the model reads and which of them are scored.
struct ChoiceRequest {
  std::vector<std::int32_t> tokens;  // context (possibly left-truncated) + continuation, <= seq_len + 1
  std::int64_t num_scored = 0;       // the last num_scored tokens are the continuation
  bool truncated = false;
};

// Token ids (context, continuation) of one text choice by the harness's rule above.
void encode_choice_pair(const Tokenizer& tok, const std::string& context, const std::string& continuation,
                        std::vector<std::int32_t>& context_tokens,
                        std::vector<std::int32_t>& continuation_tokens);

// The requests of every (example, choice), example-major. Checks labels, token ids against the model's
// vocabulary and continuation lengths against seq_len (errors name the example id and the choice).
std::vector<ChoiceRequest> build_choice_requests(const Tokenizer& tok, const std::vector<McExample>& examples,
                                                 std::int64_t vocab_size, std::int64_t seq_len,
                                                 const std::string& target_delimiter = " ");

// Summed log-likelihood of each request's scored tokens, forward passes of at most batch_rows rows.
// The result does not depend on batch_rows (rows are independent; padding is causal-masked).
std::vector<double> score_choice_requests(const Olmo2& model, const std::vector<ChoiceRequest>& requests,
                                          std::int64_t batch_rows);

// Scores every example and aggregates acc / acc_norm. `model` must be a whole model (one stage).
TaskResult evaluate_task(const Olmo2& model, const Tokenizer& tok, const std::vector<McExample>& examples,
                         std::int64_t batch_rows, const McOptions& opts = {});

}  // namespace quopt
