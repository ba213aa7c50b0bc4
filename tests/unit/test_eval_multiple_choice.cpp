// Multiple-choice scoring: labels built from brute-force log-likelihoods of a tiny random model give
// acc = 1 (and 0 when flipped); acc_norm divides by UTF-8 bytes; batching, padding and z-loss do not
// change the scores; long sequences are cut on the left; bad inputs give clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "eval/multiple_choice.hpp"
#include "test_eval_util.hpp"

namespace quopt {
namespace {

using evaltest::brute_loglik;
using evaltest::error_of;
using evaltest::eval_text;
using evaltest::test_model_config;
using evaltest::test_tokenizer;

// The tokens the harness feeds for (context, " " + choice) when the context has no trailing space,
// written out independently: ctx = encode(context), cont = encode(context + " " + choice)[len(ctx):].
struct Pair {
  std::vector<std::int32_t> ctx, cont;
};
Pair harness_pair(const Tokenizer& tok, const std::string& context, const std::string& choice) {
  Pair p;
  p.ctx = tok.encode(context);
  const auto whole = tok.encode(context + " " + choice);
  p.cont.assign(whole.begin() + static_cast<std::ptrdiff_t>(p.ctx.size()), whole.end());
  return p;
}

double brute_choice(const Olmo2& m, const Tokenizer& tok, const std::string& context,
                    const std::string& choice) {
  const Pair p = harness_pair(tok, context, choice);
  std::vector<std::int32_t> seq = p.ctx;
  seq.insert(seq.end(), p.cont.begin(), p.cont.end());
  const auto keep = static_cast<std::size_t>(m.config().seq_len + 1);
  if (seq.size() > keep) seq.erase(seq.begin(), seq.end() - static_cast<std::ptrdiff_t>(keep));
  return brute_loglik(m, seq, static_cast<std::int64_t>(p.cont.size()));
}

std::int64_t argmax(const std::vector<double>& v) {
  return static_cast<std::int64_t>(std::max_element(v.begin(), v.end()) - v.begin());
}
std::int64_t argmin(const std::vector<double>& v) {
  return static_cast<std::int64_t>(std::min_element(v.begin(), v.end()) - v.begin());
}
// Smallest gap between the largest value and any other one.
double margin(const std::vector<double>& v) {
  std::vector<double> s = v;
  std::sort(s.rbegin(), s.rend());
  return s[0] - s[1];
}

TEST(EvalMultipleChoice, EncodesPairsLikeTheHarness) {
  const Tokenizer& tok = test_tokenizer();
  std::vector<std::int32_t> ctx, cont;
  encode_choice_pair(tok, "kalo miter an", " dis ro", ctx, cont);
  const Pair p = harness_pair(tok, "kalo miter an", "dis ro");
  EXPECT_EQ(ctx, p.ctx);
  EXPECT_EQ(cont, p.cont);
  EXPECT_EQ(tok.decode(cont), "dis ro");
  // Trailing context whitespace moves into the continuation: same tokens as without it.
  std::vector<std::int32_t> ctx2, cont2;
  encode_choice_pair(tok, "kalo miter an  ", " dis ro", ctx2, cont2);
  EXPECT_EQ(ctx2, ctx);
  EXPECT_EQ(cont2, cont);
  // Empty (or blank) context: EOS stands in for it.
  for (const char* empty : {"", " \n"}) {
    encode_choice_pair(tok, empty, " dis ro", ctx2, cont2);
    EXPECT_EQ(ctx2, std::vector<std::int32_t>{tok.eos_id()});
    EXPECT_EQ(cont2, tok.encode("dis ro"));
  }
  // Requests are context + continuation with the continuation scored.
  McExample ex{"e", "kalo miter an", {"dis ro", "sun"}, 0, {}, {}};
  const auto req = build_choice_requests(tok, {ex}, tok.vocab_size(), 64);
  ASSERT_EQ(req.size(), 2u);
  std::vector<std::int32_t> want = p.ctx;
  want.insert(want.end(), p.cont.begin(), p.cont.end());
  EXPECT_EQ(req[0].tokens, want);
  EXPECT_EQ(req[0].num_scored, static_cast<std::int64_t>(p.cont.size()));
  EXPECT_FALSE(req[0].truncated);
  EXPECT_EQ(req[1].num_scored, static_cast<std::int64_t>(harness_pair(tok, ex.context, "sun").cont.size()));
}

class EvalMcModel : public ::testing::Test {
 protected:
  EvalMcModel() : model_(test_model_config(test_tokenizer().vocab_size(), 48)) { model_.init(7); }

  // n examples with 4 choices of 1-4 words whose best choice beats the others by > 0.05 nats;
  // brute-force log-likelihoods in lls.
  std::vector<McExample> make_examples(int n, std::vector<std::vector<double>>& lls) {
    const Tokenizer& tok = test_tokenizer();
    auto gen = eval_text(21);
    std::vector<McExample> out;
    while (static_cast<int>(out.size()) < n) {
      McExample ex;
      ex.id = "ex" + std::to_string(out.size());
      ex.context = gen.words(3 + static_cast<int>(gen.below(6))) + ".";
      std::vector<double> ll;
      for (int c = 0; c < 4; ++c) {
        ex.choices.push_back(gen.words(1 + static_cast<int>(gen.below(4))));
        ll.push_back(brute_choice(model_, tok, ex.context, ex.choices.back()));
      }
      std::vector<double> sorted_unique = ll;
      std::sort(sorted_unique.begin(), sorted_unique.end());
      if (margin(ll) < 0.05 ||
          std::adjacent_find(sorted_unique.begin(), sorted_unique.end(),
                             [](double a, double b) { return b - a < 0.05; }) != sorted_unique.end())
        continue;  // keep well-separated choices only (float rounding cannot reorder them)
      out.push_back(ex);
      lls.push_back(ll);
    }
    return out;
  }

  Olmo2 model_;
};

TEST_F(EvalMcModel, AccuracyFollowsTheModelsOwnLogLikelihoods) {
  const Tokenizer& tok = test_tokenizer();
  std::vector<std::vector<double>> lls;
  std::vector<McExample> ex = make_examples(12, lls);
  McOptions opts;
  opts.name = "synthetic";
  opts.keep_examples = true;

  for (std::size_t i = 0; i < ex.size(); ++i) ex[i].label = argmax(lls[i]);
  TaskResult r = evaluate_task(model_, tok, ex, 5, opts);
  EXPECT_EQ(r.name, "synthetic");
  EXPECT_EQ(r.n, 12);
  EXPECT_EQ(r.acc, 1.0);
  EXPECT_EQ(r.acc_stderr, 0.0);
  EXPECT_EQ(r.truncated, 0);
  ASSERT_EQ(r.examples.size(), ex.size());
  double expect_norm_hits = 0;
  for (std::size_t i = 0; i < ex.size(); ++i) {
    ASSERT_EQ(r.examples[i].loglik.size(), 4u);
    std::vector<double> normed;
    for (std::size_t c = 0; c < 4; ++c) {
      EXPECT_NEAR(r.examples[i].loglik[c], lls[i][c], 1e-3) << ex[i].id << " choice " << c;
      EXPECT_EQ(r.examples[i].num_bytes[c], static_cast<std::int64_t>(ex[i].choices[c].size()));
      EXPECT_EQ(r.examples[i].num_tokens[c],
                static_cast<std::int64_t>(harness_pair(tok, ex[i].context, ex[i].choices[c]).cont.size()));
      normed.push_back(lls[i][c] / static_cast<double>(ex[i].choices[c].size()));
    }
    EXPECT_EQ(r.examples[i].pred, argmax(lls[i]));
    expect_norm_hits += argmax(normed) == ex[i].label ? 1 : 0;
  }
  EXPECT_DOUBLE_EQ(r.acc_norm, expect_norm_hits / 12.0);

  // Flipped labels: the least likely choice is never the prediction.
  for (std::size_t i = 0; i < ex.size(); ++i) ex[i].label = argmin(lls[i]);
  r = evaluate_task(model_, tok, ex, 5, opts);
  EXPECT_EQ(r.acc, 0.0);

  // Mixed: 5 right, 7 wrong; standard error as the harness computes it, sqrt(p (1 - p) / (n - 1)).
  for (std::size_t i = 0; i < ex.size(); ++i) ex[i].label = i < 5 ? argmax(lls[i]) : argmin(lls[i]);
  r = evaluate_task(model_, tok, ex, 5, opts);
  EXPECT_DOUBLE_EQ(r.acc, 5.0 / 12.0);
  EXPECT_NEAR(r.acc_stderr, std::sqrt(5.0 / 12.0 * 7.0 / 12.0 / 11.0), 1e-12);
}

TEST_F(EvalMcModel, BatchingAndPaddingDoNotChangeScores) {
  const Tokenizer& tok = test_tokenizer();
  std::vector<std::vector<double>> lls;
  const std::vector<McExample> ex = make_examples(6, lls);
  const auto req = build_choice_requests(tok, ex, model_.config().vocab_size, model_.config().seq_len);
  const std::vector<double> ref = score_choice_requests(model_, req, 1);
  for (const std::int64_t rows : {2, 7, 1000}) {
    const std::vector<double> got = score_choice_requests(model_, req, rows);
    ASSERT_EQ(got.size(), ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-4) << "rows " << rows;
  }
  EXPECT_NE(error_of([&] { score_choice_requests(model_, req, 0); }).find("batch size must be >= 1"),
            std::string::npos);
}

TEST_F(EvalMcModel, AccNormDividesByUtf8Bytes) {
  const Tokenizer& tok = test_tokenizer();
  auto gen = eval_text(5);
  const std::string context = "kalo ter an dis.";
  // A pool of choices of 1-6 words (a few with 2-byte characters), scored once by brute force.
  std::vector<std::string> pool;
  for (int i = 0; i < 48; ++i) pool.push_back(gen.words(1 + static_cast<int>(gen.below(6))));
  pool.push_back("caf\xC3\xA9");
  pool.push_back("na\xC3\xAFve \xC3\xA9t\xC3\xA9 ka");
  std::vector<double> ll, bytes, toks;
  for (const auto& c : pool) {
    ll.push_back(brute_choice(model_, tok, context, c));
    bytes.push_back(static_cast<double>(c.size()));
    toks.push_back(static_cast<double>(harness_pair(tok, context, c).cont.size()));
  }
  // (a, b): raw log-likelihood prefers a, per byte prefers b. (c, d): per byte prefers c, per token d.
  const double gap = 0.02;
  int a = -1, b = -1, c = -1, d = -1;
  for (std::size_t i = 0; i < pool.size(); ++i)
    for (std::size_t j = 0; j < pool.size(); ++j) {
      if (a < 0 && ll[i] > ll[j] + gap && ll[j] / bytes[j] > ll[i] / bytes[i] + gap) a = int(i), b = int(j);
      if (c < 0 && ll[i] / bytes[i] > ll[j] / bytes[j] + gap && ll[j] / toks[j] > ll[i] / toks[i] + gap)
        c = int(i), d = int(j);
    }
  ASSERT_GE(a, 0) << "no pair where acc and acc_norm disagree in the pool";
  ASSERT_GE(c, 0) << "no pair where byte and token normalisation disagree in the pool";

  McExample e1{"raw-vs-norm", context, {pool[a], pool[b]}, 0, {}, {}};
  TaskResult r = evaluate_task(model_, tok, {e1}, 4);
  EXPECT_EQ(r.acc, 1.0);
  EXPECT_EQ(r.acc_norm, 0.0);
  e1.label = 1;
  r = evaluate_task(model_, tok, {e1}, 4);
  EXPECT_EQ(r.acc, 0.0);
  EXPECT_EQ(r.acc_norm, 1.0);

  // Normalising by token count would pick choice 1; by bytes it picks choice 0 (the label).
  McExample e2{"bytes-vs-tokens", context, {pool[c], pool[d]}, 0, {}, {}};
  r = evaluate_task(model_, tok, {e2}, 4);
  EXPECT_EQ(r.acc_norm, 1.0);

  // Non-ASCII choices count bytes, not characters.
  McOptions keep;
  keep.keep_examples = true;
  McExample e3{"utf8", context, {pool[48], pool[49]}, 0, {}, {}};
  r = evaluate_task(model_, tok, {e3}, 4, keep);
  EXPECT_EQ(r.examples[0].num_bytes, (std::vector<std::int64_t>{5, 15}));
}

TEST_F(EvalMcModel, LongSequencesAreCutOnTheLeft) {
  const Tokenizer& tok = test_tokenizer();
  Olmo2 small(test_model_config(tok.vocab_size(), 16));
  small.init(3);
  auto gen = eval_text(8);
  McExample ex{"long", gen.words(30) + ".", {gen.words(2), gen.words(3)}, 0, {}, {}};
  const auto req = build_choice_requests(tok, {ex}, tok.vocab_size(), 16);
  McOptions keep;
  keep.keep_examples = true;
  const TaskResult r = evaluate_task(small, tok, {ex}, 8, keep);
  EXPECT_EQ(r.truncated, 2);
  for (std::size_t c = 0; c < 2; ++c) {
    const Pair p = harness_pair(tok, ex.context, ex.choices[c]);
    std::vector<std::int32_t> full = p.ctx;
    full.insert(full.end(), p.cont.begin(), p.cont.end());
    ASSERT_GT(full.size(), 17u);
    const std::vector<std::int32_t> tail(full.end() - 17, full.end());
    EXPECT_TRUE(req[c].truncated);
    EXPECT_EQ(req[c].tokens, tail);
    EXPECT_EQ(req[c].num_scored, static_cast<std::int64_t>(p.cont.size()));
    EXPECT_NEAR(r.examples[0].loglik[c], brute_loglik(small, tail, req[c].num_scored), 1e-3);
  }
}

TEST_F(EvalMcModel, ZLossIsNotPartOfTheScore) {
  const Tokenizer& tok = test_tokenizer();
  std::vector<std::vector<double>> lls;
  const std::vector<McExample> ex = make_examples(4, lls);
  Olmo2 with_z(test_model_config(tok.vocab_size(), 48, 0.05));
  with_z.init(7);  // same weights as model_
  const auto req = build_choice_requests(tok, ex, tok.vocab_size(), 48);
  // The z-loss is active in with_z's training loss ...
  Tensor in = Tensor::empty({1, 4}, DType::I32), tgt = Tensor::empty({1, 4}, DType::I32);
  for (int j = 0; j < 4; ++j) {
    in.data<std::int32_t>()[j] = req[0].tokens[static_cast<std::size_t>(j)];
    tgt.data<std::int32_t>()[j] = req[0].tokens[static_cast<std::size_t>(j + 1)];
  }
  Activations a0, a1;
  EXPECT_GT(with_z.forward(in, tgt, a1).sum, model_.forward(in, tgt, a0).sum + 1e-3);
  // ... but not in the log-likelihoods.
  const auto s0 = score_choice_requests(model_, req, 3), s1 = score_choice_requests(with_z, req, 3);
  for (std::size_t i = 0; i < s0.size(); ++i) EXPECT_NEAR(s1[i], s0[i], 1e-4);
}

TEST_F(EvalMcModel, PreTokenizedExamplesAreScoredAsGiven) {
  const Tokenizer& tok = test_tokenizer();
  McExample ex;
  ex.id = "tok";
  ex.context_tokens = tok.encode("kalo miter an dis");
  ex.choice_tokens = {tok.encode("ro ve"), tok.encode("sun pe tha or")};
  ex.choices = {"ro ve", "sun pe tha or"};
  McExample no_ctx = ex;
  no_ctx.context_tokens.clear();
  McOptions keep;
  keep.keep_examples = true;
  const TaskResult r = evaluate_task(model_, tok, {ex, no_ctx}, 3, keep);
  for (std::size_t c = 0; c < 2; ++c) {
    std::vector<std::int32_t> seq = ex.context_tokens;
    seq.insert(seq.end(), ex.choice_tokens[c].begin(), ex.choice_tokens[c].end());
    const auto n = static_cast<std::int64_t>(ex.choice_tokens[c].size());
    EXPECT_NEAR(r.examples[0].loglik[c], brute_loglik(model_, seq, n), 1e-3);
    seq = {tok.eos_id()};
    seq.insert(seq.end(), ex.choice_tokens[c].begin(), ex.choice_tokens[c].end());
    EXPECT_NEAR(r.examples[1].loglik[c], brute_loglik(model_, seq, n), 1e-3);
  }
}

TEST_F(EvalMcModel, BadInputsGiveClearErrors) {
  const Tokenizer& tok = test_tokenizer();
  auto gen = eval_text(2);
  Olmo2 tiny(test_model_config(tok.vocab_size(), 4));
  tiny.init(1);
  McExample long_choice{"ex-long", "ka", {gen.words(12), "lo"}, 0, {}, {}};
  std::string msg = error_of([&] { evaluate_task(tiny, tok, {long_choice}, 2); });
  EXPECT_NE(msg.find("example ex-long, choice 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("more than model.seq_len = 4"), std::string::npos) << msg;

  Olmo2 small_vocab(test_model_config(100, 32));
  small_vocab.init(1);
  McExample ex{"ex-v", "kalo miter", {"an", "dis"}, 0, {}, {}};
  msg = error_of([&] { evaluate_task(small_vocab, tok, {ex}, 2); });
  EXPECT_NE(msg.find("outside the model's vocabulary of 100"), std::string::npos) << msg;

  msg = error_of([&] { evaluate_task(model_, tok, {}, 2); });
  EXPECT_NE(msg.find("no examples"), std::string::npos) << msg;

  McExample bad_label = ex;
  bad_label.label = 5;
  msg = error_of([&] { evaluate_task(model_, tok, {bad_label}, 2); });
  EXPECT_NE(msg.find("label 5 is out of range"), std::string::npos) << msg;
}

}  // namespace
}  // namespace quopt
