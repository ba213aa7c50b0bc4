// The built-in continuation task made from a token shard: deterministic, the true continuation really
// follows its context inside one document, distractors come from elsewhere in the shard, labels are
// shuffled; and the task can be scored.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "eval/builtin_task.hpp"
#include "eval/multiple_choice.hpp"
#include "io/token_shard.hpp"
#include "test_eval_util.hpp"

namespace quopt {
namespace {

using evaltest::error_of;
using evaltest::eval_text;
using evaltest::test_tokenizer;

class EvalBuiltinTask : public ::testing::Test {
 protected:
  void SetUp() override {
    const Tokenizer& tok = test_tokenizer();
    auto gen = eval_text(77);
    // Documents of 1-5 sentences (some shorter than context + continuation), each followed by EOS.
    for (int d = 0; d < 60; ++d) {
      std::string doc;
      const int n = 1 + static_cast<int>(gen.below(5));
      for (int s = 0; s < n; ++s) {
        if (s) doc += ' ';
        doc += gen.sentence();
      }
      for (const std::int32_t id : tok.encode(doc)) tokens_.push_back(static_cast<std::uint32_t>(id));
      tokens_.push_back(static_cast<std::uint32_t>(tok.eos_id()));
    }
    path_ = dir_.file("val.bin");
    write_token_shard(path_, tokens_, static_cast<std::uint64_t>(tok.vocab_size()));
    shard_ = TokenShard::open(path_);
  }

  // Shard positions where `span` occurs with no EOS inside.
  std::vector<std::size_t> occurrences(const std::vector<std::int32_t>& span) const {
    std::vector<std::size_t> out;
    const auto eos = static_cast<std::int32_t>(test_tokenizer().eos_id());
    if (std::find(span.begin(), span.end(), eos) != span.end()) return out;
    for (std::size_t p = 0; p + span.size() <= tokens_.size(); ++p) {
      bool eq = true;
      for (std::size_t i = 0; i < span.size() && eq; ++i)
        eq = static_cast<std::int32_t>(tokens_[p + i]) == span[i];
      if (eq) out.push_back(p);
    }
    return out;
  }

  evaltest::TempDir dir_;
  std::string path_;
  std::vector<std::uint32_t> tokens_;
  TokenShard shard_;
};

TEST_F(EvalBuiltinTask, TrueContinuationFollowsTheContext) {
  const Tokenizer& tok = test_tokenizer();
  ContinuationTaskOptions o;
  o.context_tokens = 12;
  o.continuation_tokens = 5;
  const auto ex = builtin_continuation_task(shard_, tok, 40, 123, o);
  ASSERT_EQ(ex.size(), 40u);
  std::set<std::int64_t> labels;
  std::set<std::size_t> positions;
  for (const McExample& e : ex) {
    ASSERT_EQ(e.context_tokens.size(), 12u);
    ASSERT_EQ(e.choice_tokens.size(), 4u);
    ASSERT_EQ(e.choices.size(), 4u);
    ASSERT_GE(e.label, 0);
    ASSERT_LT(e.label, 4);
    labels.insert(e.label);
    // Context followed by the labelled choice is a contiguous run of one document (no EOS inside).
    std::vector<std::int32_t> joined = e.context_tokens;
    const auto& truth = e.choice_tokens[static_cast<std::size_t>(e.label)];
    joined.insert(joined.end(), truth.begin(), truth.end());
    const auto at = occurrences(joined);
    ASSERT_FALSE(at.empty()) << e.id << ": context + true continuation does not occur in the shard";
    // The id names the context's position, which is one of those occurrences.
    const std::size_t p = std::stoul(e.id.substr(e.id.find('@') + 1));
    EXPECT_NE(std::find(at.begin(), at.end(), p), at.end()) << e.id;
    positions.insert(p);
    for (std::size_t c = 0; c < 4; ++c) {
      EXPECT_EQ(e.choice_tokens[c].size(), 5u);
      EXPECT_EQ(e.choices[c], tok.decode(e.choice_tokens[c]));
      if (static_cast<std::int64_t>(c) == e.label) continue;
      // Distractors: spans of the shard (inside a document), different from the truth and each other,
      // with an occurrence that does not overlap the example's own tokens.
      EXPECT_NE(e.choice_tokens[c], truth) << e.id;
      for (std::size_t c2 = 0; c2 < c; ++c2) EXPECT_NE(e.choice_tokens[c], e.choice_tokens[c2]) << e.id;
      const auto occ = occurrences(e.choice_tokens[c]);
      EXPECT_TRUE(
          std::any_of(occ.begin(), occ.end(), [&](std::size_t q) { return q + 5 <= p || q >= p + 17; }))
          << e.id << " choice " << c;
    }
    EXPECT_EQ(e.context, tok.decode(e.context_tokens));
  }
  EXPECT_EQ(labels.size(), 4u);      // the right answer is not always in the same place
  EXPECT_EQ(positions.size(), 40u);  // distinct examples
}

TEST_F(EvalBuiltinTask, DeterministicGivenTheSeed) {
  const Tokenizer& tok = test_tokenizer();
  const auto a = builtin_continuation_task(shard_, tok, 20, 9);
  const auto b = builtin_continuation_task(shard_, tok, 20, 9);
  const auto c = builtin_continuation_task(shard_, tok, 20, 10);
  const auto longer = builtin_continuation_task(shard_, tok, 30, 9);
  ASSERT_EQ(a.size(), 20u);
  int differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].label, b[i].label);
    EXPECT_EQ(a[i].context_tokens, b[i].context_tokens);
    EXPECT_EQ(a[i].choice_tokens, b[i].choice_tokens);
    // Asking for more examples keeps the first ones.
    EXPECT_EQ(a[i].id, longer[i].id);
    EXPECT_EQ(a[i].choice_tokens, longer[i].choice_tokens);
    differ += a[i].id != c[i].id ? 1 : 0;
  }
  EXPECT_GT(differ, 10);  // another seed, other examples
}

TEST_F(EvalBuiltinTask, CanBeScored) {
  const Tokenizer& tok = test_tokenizer();
  ContinuationTaskOptions o;
  o.context_tokens = 20;
  o.continuation_tokens = 6;
  o.distractors = 2;
  const auto ex = builtin_continuation_task(shard_, tok, 8, 4, o);
  Olmo2 model(evaltest::test_model_config(tok.vocab_size(), 32));
  model.init(5);
  McOptions keep;
  keep.keep_examples = true;
  const TaskResult r = evaluate_task(model, tok, ex, 5, keep);
  EXPECT_EQ(r.n, 8);
  EXPECT_EQ(r.truncated, 0);
  for (std::size_t i = 0; i < ex.size(); ++i) {
    ASSERT_EQ(r.examples[i].loglik.size(), 3u);
    for (std::size_t c = 0; c < 3; ++c) {
      std::vector<std::int32_t> seq = ex[i].context_tokens;
      seq.insert(seq.end(), ex[i].choice_tokens[c].begin(), ex[i].choice_tokens[c].end());
      EXPECT_NEAR(r.examples[i].loglik[c], evaltest::brute_loglik(model, seq, 6), 1e-3);
      EXPECT_EQ(r.examples[i].num_tokens[c], 6);
    }
  }
}

TEST_F(EvalBuiltinTask, ErrorsExplainWhatIsMissing) {
  const Tokenizer& tok = test_tokenizer();
  ContinuationTaskOptions o;
  o.context_tokens = 100000;  // longer than any document
  std::string msg = error_of([&] { builtin_continuation_task(shard_, tok, 5, 1, o); });
  EXPECT_NE(msg.find("has only 0 places where 100000 context"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path_), std::string::npos) << msg;
  msg = error_of([&] { builtin_continuation_task(shard_, tok, 0, 1); });
  EXPECT_NE(msg.find("n >= 1"), std::string::npos) << msg;

  // A shard from a bigger vocabulary than the tokenizer's.
  const std::string other = dir_.file("other.bin");
  write_token_shard(other, std::vector<std::uint32_t>{1, 2, 3}, 100000);
  const TokenShard big = TokenShard::open(other);
  msg = error_of([&] { builtin_continuation_task(big, tok, 1, 1); });
  EXPECT_NE(msg.find("use the tokenizer the shard was made with"), std::string::npos) << msg;

  // One short document: no room for distinct distractors away from the example.
  const std::string tiny = dir_.file("tiny.bin");
  std::vector<std::uint32_t> ids(tokens_.begin(), tokens_.begin() + 20);
  std::replace(ids.begin(), ids.end(), static_cast<std::uint32_t>(tok.eos_id()), 5u);
  write_token_shard(tiny, ids, static_cast<std::uint64_t>(tok.vocab_size()));
  const TokenShard t = TokenShard::open(tiny);
  ContinuationTaskOptions o2;
  o2.context_tokens = 10;
  o2.continuation_tokens = 8;
  msg = error_of([&] { builtin_continuation_task(t, tok, 1, 1, o2); });
  EXPECT_NE(msg.find("too little text for 3 distinct distractors"), std::string::npos) << msg;
}

}  // namespace
}  // namespace quopt
