#pragma once
// Multiple-choice examples and the task file format (inputs/tasks/README.md): JSON Lines, one example
// per line,
//   {"context": "Question: ...\nAnswer:", "choices": ["...", "..."], "label": 0, "id": "optional"}
// Blank lines are skipped; other keys are ignored (kept for the user's own bookkeeping).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace quopt {

struct McExample {
  std::string id;                    // from "id", else "<file>:<line>"
  std::string context;               // text before the answer (may be empty)
  std::vector<std::string> choices;  // >= 2 candidate continuations, without the leading delimiter
  std::int64_t label = 0;            // index of the right choice
  // Pre-tokenized form (built-in tasks made from token shards). When choice_tokens is non-empty it is
  // scored as is: context_tokens (or [EOS] when empty) followed by choice_tokens[i]; the text fields
  // then only describe the example and give acc_norm's byte lengths.
  std::vector<std::int32_t> context_tokens;
  std::vector<std::vector<std::int32_t>> choice_tokens;
};

// Parses task JSONL text; `origin` (a file name) prefixes every error message together with the line
// number. Throws quopt::Error on: invalid JSON, a line that is not an object, a missing or mistyped
// key, fewer than 2 choices, an empty choice, a label out of range, or no example at all.
std::vector<McExample> parse_task_jsonl(std::string_view text, const std::string& origin);

// Reads and parses a task file (see parse_task_jsonl).
std::vector<McExample> load_task_jsonl(const std::string& path);

// Number of UTF-8 bytes of a choice, the acc_norm denominator (at least 1).
std::int64_t choice_bytes(const std::string& choice);

}  // namespace quopt
