#include "eval/builtin_task.hpp"

#include <algorithm>
#include <unordered_set>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/token_shard.hpp"
#include "io/tokenizer.hpp"

namespace quopt {

namespace {

// Start positions where a span of `len` tokens fits inside one document, numbered 0..total-1 in shard
// order; position(i) maps such a number to the shard position.
class SpanStarts {
 public:
  SpanStarts(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& docs, std::uint64_t len) {
    for (const auto& [b, e] : docs) {
      if (e - b < len) continue;
      begin_.push_back(b);
      first_index_.push_back(total_);
      total_ += e - b - len + 1;
    }
  }
  std::uint64_t total() const { return total_; }
  std::uint64_t position(std::uint64_t i) const {
    const auto it = std::upper_bound(first_index_.begin(), first_index_.end(), i);
    const auto d = static_cast<std::size_t>(it - first_index_.begin()) - 1;
    return begin_[d] + (i - first_index_[d]);
  }

 private:
  std::vector<std::uint64_t> begin_, first_index_;
  std::uint64_t total_ = 0;
};

std::vector<std::int32_t> read_span(const TokenShard& shard, std::uint64_t begin, std::uint64_t len) {
  shard.check_range(begin, begin + len);
  std::vector<std::int32_t> out(len);
  for (std::uint64_t i = 0; i < len; ++i) out[i] = static_cast<std::int32_t>(shard.token(begin + i));
  return out;
}

}  // namespace

std::vector<McExample> builtin_continuation_task(const TokenShard& shard, const Tokenizer& tok,
                                                 std::int64_t n, std::uint64_t seed,
                                                 const ContinuationTaskOptions& opts) {
  const std::string& path = shard.path();
  QUOPT_CHECK(n >= 1, "the built-in continuation task needs n >= 1 examples, got ", n);
  QUOPT_CHECK(opts.context_tokens >= 1, "continuation task: context_tokens must be >= 1, got ",
              opts.context_tokens);
  QUOPT_CHECK(opts.continuation_tokens >= 1, "continuation task: continuation_tokens must be >= 1, got ",
              opts.continuation_tokens);
  QUOPT_CHECK(opts.distractors >= 1, "continuation task: distractors must be >= 1, got ", opts.distractors);
  if (shard.vocab_size() > static_cast<std::uint64_t>(tok.vocab_size()))
    fail("token shard ", path, " has a vocabulary of ", shard.vocab_size(), " but tokenizer ", tok.origin(),
         " only ", tok.vocab_size(), "; use the tokenizer the shard was made with");
  const std::int32_t eos = tok.eos_id();
  const auto K = static_cast<std::uint64_t>(opts.context_tokens + opts.continuation_tokens);
  const auto M = static_cast<std::uint64_t>(opts.continuation_tokens);

  // Documents: the runs of tokens between EOS tokens.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> docs;
  std::uint64_t doc_begin = 0;
  for (std::uint64_t i = 0; i < shard.size(); ++i) {
    if (static_cast<std::int64_t>(shard.token(i)) != eos) continue;
    if (i > doc_begin) docs.emplace_back(doc_begin, i);
    doc_begin = i + 1;
  }
  if (shard.size() > doc_begin) docs.emplace_back(doc_begin, shard.size());

  const SpanStarts example_starts(docs, K), span_starts(docs, M);
  if (example_starts.total() < static_cast<std::uint64_t>(n))
    fail("token shard ", path, " has only ", example_starts.total(), " places where ", opts.context_tokens,
         " context + ", opts.continuation_tokens,
         " continuation tokens fit inside one document, fewer than the ", n,
         " examples asked for; use fewer examples, shorter context/continuation, or a bigger shard");

  // Distinct example positions by rejection sampling, so the first examples do not depend on n.
  Rng pick(seed, hash_name("eval.continuation.examples"));
  std::unordered_set<std::uint64_t> taken;
  std::vector<std::uint64_t> starts;
  while (starts.size() < static_cast<std::size_t>(n)) {
    const std::uint64_t i = pick.below(example_starts.total());
    if (taken.insert(i).second) starts.push_back(example_starts.position(i));
  }

  const std::int64_t n_choices = opts.distractors + 1;
  // quopt choice: generous; a draw fails only if it overlaps the example or repeats a choice.
  const std::int64_t max_attempts = 1000 * n_choices;
  std::vector<McExample> out;
  out.reserve(starts.size());
  for (std::size_t e = 0; e < starts.size(); ++e) {
    const std::uint64_t p = starts[e];
    McExample ex;
    ex.id = cat("cont-", e, "@", p);
    ex.context_tokens = read_span(shard, p, K - M);
    const std::vector<std::int32_t> truth = read_span(shard, p + K - M, M);
    Rng rng(seed, hash_name(cat("eval.continuation.choices.", e)));
    ex.label = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n_choices)));
    std::vector<std::vector<std::int32_t>> distract;
    std::int64_t attempts = 0;
    while (static_cast<std::int64_t>(distract.size()) < opts.distractors) {
      if (++attempts > max_attempts || span_starts.total() == 0)
        fail("token shard ", path, " has too little text for ", opts.distractors, " distinct distractors of ",
             M, " tokens away from example ", ex.id, "; use fewer distractors, a shorter continuation or ",
             "a bigger shard");
      const std::uint64_t q = span_starts.position(rng.below(span_starts.total()));
      if (q < p + K && p < q + M) continue;  // overlaps the example's own tokens
      std::vector<std::int32_t> cand = read_span(shard, q, M);
      if (cand == truth || std::find(distract.begin(), distract.end(), cand) != distract.end()) continue;
      distract.push_back(std::move(cand));
    }
    for (std::int64_t c = 0, d = 0; c < n_choices; ++c)
      ex.choice_tokens.push_back(c == ex.label ? truth : distract[static_cast<std::size_t>(d++)]);
    ex.context = tok.decode(ex.context_tokens);
    for (const auto& ch : ex.choice_tokens) ex.choices.push_back(tok.decode(ch));
    out.push_back(std::move(ex));
  }
  return out;
}

}  // namespace quopt
