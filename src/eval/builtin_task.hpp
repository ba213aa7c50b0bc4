#pragma once
// A multiple-choice task made offline from held-out text (docs/evaluation.md): each example is a
// context of k tokens from a document of a token shard (documents are the runs between EOS tokens)
// and choices of m tokens: the true continuation (the next m tokens of the same document) and
// `distractors` spans of m tokens taken from other places of the shard (not overlapping the example's
// own k + m tokens, no EOS inside, all choices different). The right choice sits at a random position.
// Everything is a function of (shard, options, n, seed).
#include <cstdint>
#include <vector>

#include "eval/task.hpp"

namespace quopt {

class TokenShard;
class Tokenizer;

struct ContinuationTaskOptions {
  // quopt choices: a context long enough to carry topic and syntax (half of the tiny models' 64-token
  // seq_len) and a continuation of a few words (in the range of HellaSwag's endings), 4 choices like
  // HellaSwag (Zellers et al., 2019).
  std::int64_t context_tokens = 32;
  std::int64_t continuation_tokens = 16;
  std::int64_t distractors = 3;
};

// N examples (ids "cont-<i>@<shard position>"), pre-tokenized (McExample::context_tokens /
// choice_tokens) with the text fields filled by tok.decode. Throws quopt::Error when the shard has
// fewer than n places where k + m tokens fit inside one document, or too little text for distractors.
std::vector<McExample> builtin_continuation_task(const TokenShard& shard, const Tokenizer& tok,
                                                 std::int64_t n, std::uint64_t seed,
                                                 const ContinuationTaskOptions& opts = {});

}  // namespace quopt
