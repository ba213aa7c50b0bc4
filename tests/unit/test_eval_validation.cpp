// Validation loss and perplexity: the mean next-token cross-entropy over the shard's windows, computed
// here by brute force from the logits; without z-loss; every window once by default.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.hpp"
#include "eval/validation.hpp"
#include "io/batch_loader.hpp"
#include "io/token_shard.hpp"
#include "test_eval_util.hpp"

namespace quopt {
namespace {

constexpr std::int64_t kVocab = 50, kSeq = 8;

class EvalValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    Rng rng(4, 4);
    // 8 * 11 + 5 tokens: 11 full windows of seq_len + 1 (they share their boundary tokens), 4 left over.
    for (int i = 0; i < 8 * 11 + 5; ++i) tokens_.push_back(static_cast<std::uint32_t>(rng.below(kVocab)));
    path_ = dir_.file("val.bin");
    write_token_shard(path_, tokens_, kVocab);
    shard_ = TokenShard::open(path_);
  }
  // Mean cross-entropy of windows [0, w) by brute force.
  double brute(const Olmo2& m, std::int64_t w) const {
    double sum = 0.0;
    for (std::int64_t k = 0; k < w; ++k) {
      std::vector<std::int32_t> seq(tokens_.begin() + k * kSeq, tokens_.begin() + k * kSeq + kSeq + 1);
      sum -= evaltest::brute_loglik(m, seq, kSeq);
    }
    return sum / static_cast<double>(w * kSeq);
  }

  evaltest::TempDir dir_;
  std::string path_;
  std::vector<std::uint32_t> tokens_;
  TokenShard shard_;
};

TEST_F(EvalValidation, MeanCrossEntropyOverWindows) {
  Olmo2 m(evaltest::test_model_config(kVocab, kSeq));
  m.init(2);
  const ValidationResult all = evaluate_validation(m, shard_, 0, 4);  // 11 windows: batches of 4, 4, 3
  EXPECT_EQ(all.windows, 11);
  EXPECT_EQ(all.tokens, 11 * kSeq);
  EXPECT_NEAR(all.loss, brute(m, 11), 1e-5);
  EXPECT_NEAR(all.perplexity, std::exp(brute(m, 11)), 1e-5 * all.perplexity);

  const ValidationResult some = evaluate_validation(m, shard_, 5, 2);
  EXPECT_EQ(some.windows, 5);
  EXPECT_EQ(some.tokens, 5 * kSeq);
  EXPECT_NEAR(some.loss, brute(m, 5), 1e-5);
  // More windows than the shard holds: each window once.
  EXPECT_EQ(evaluate_validation(m, shard_, 1000, 4).windows, 11);
}

TEST_F(EvalValidation, ExcludesZLoss) {
  Olmo2 plain(evaltest::test_model_config(kVocab, kSeq));
  Olmo2 with_z(evaltest::test_model_config(kVocab, kSeq, 0.01));
  plain.init(2);
  with_z.init(2);
  const double ce = evaluate_validation(plain, shard_, 0, 4).loss;
  EXPECT_NEAR(evaluate_validation(with_z, shard_, 0, 4).loss, ce, 1e-5);
  // The model's own loss (what training minimises) includes the positive z * lse^2 term.
  BatchLoader loader(shard_, kSeq, 0, BatchOrder::Sequential);
  Tensor in, tgt;
  loader.load(0, 11, 0, 11, in, tgt);
  Activations act;
  const LossSum ls = with_z.forward(in, tgt, act);
  EXPECT_GT(ls.sum / static_cast<double>(ls.count), ce + 1e-3);
}

TEST_F(EvalValidation, PerWindowLossesInWindowOrderWithoutZLoss) {
  // Each window's mean cross-entropy by brute force, whatever the batching (batches of 4, 4, 3 and of 2,
  // ..., 1) and with a z-loss that must be left out as from the mean.
  Olmo2 with_z(evaltest::test_model_config(kVocab, kSeq, 0.01));
  with_z.init(5);
  for (std::int64_t rows : {4, 2}) {
    const ValidationResult r = evaluate_validation(with_z, shard_, 0, rows);
    ASSERT_EQ(r.window_loss.size(), 11u);
    double mean = 0.0;
    for (std::int64_t k = 0; k < 11; ++k) {
      const std::vector<std::int32_t> seq(tokens_.begin() + k * kSeq, tokens_.begin() + k * kSeq + kSeq + 1);
      EXPECT_NEAR(r.window_loss[static_cast<std::size_t>(k)],
                  -evaltest::brute_loglik(with_z, seq, kSeq) / kSeq, 1e-5)
          << "window " << k << ", batches of " << rows;
      mean += r.window_loss[static_cast<std::size_t>(k)] / 11.0;
    }
    EXPECT_NEAR(mean, r.loss, 1e-6);  // full windows: the mean of the window means is the loss
  }
}

TEST_F(EvalValidation, RejectsMismatchedShards) {
  Olmo2 small(evaltest::test_model_config(20, kSeq));
  small.init(1);
  const std::string msg = evaltest::error_of([&] { evaluate_validation(small, shard_, 0, 4); });
  EXPECT_NE(msg.find("vocabulary of 50 but model.vocab_size = 20"), std::string::npos) << msg;
}

}  // namespace
}  // namespace quopt
