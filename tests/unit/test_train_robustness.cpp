// Robustness tracked during training (train/robustness.hpp) on a tiny model: the schedule of
// measurements, a measurement against the same quantities computed directly (PTQ as quopt ptq does it,
// the losses on the calibration batch, analyze_model), a QAT run measuring its own quantizer, the
// metrics.jsonl line and the /metrics curves, and the configuration errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <vector>

#include "analysis/model_analysis.hpp"
#include "core/rng.hpp"
#include "io/calibration.hpp"
#include "quant/ptq.hpp"
#include "quant/qat.hpp"
#include "support/error_of.hpp"
#include "train/robustness.hpp"

namespace quopt {
namespace {

namespace fs = std::filesystem;

class Robustness : public ::testing::Test {
 protected:
  void SetUp() override {
    shard_path_ = fs::temp_directory_path() / cat("quopt_test_robustness_", ::getpid(), ".bin");
    std::vector<std::uint32_t> ids(4000);
    Rng rng(11, 1);
    for (auto& t : ids) t = static_cast<std::uint32_t>(rng.below(23));
    write_token_shard(shard_path_.string(), ids, 23);
    cfg_.model.d_model = 16;
    cfg_.model.n_layers = 2;
    cfg_.model.n_heads = 2;
    cfg_.model.n_kv_heads = 2;
    cfg_.model.vocab_size = 23;
    cfg_.model.seq_len = 8;
    cfg_.train.steps = 30;
    cfg_.train.seed = 5;
    cfg_.quant.layers = {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_gate", "mlp_down"};
    cfg_.quant.hadamard_block = 16;
    cfg_.track.every = 10;
    cfg_.track.sequences = 3;
  }
  void TearDown() override { fs::remove(shard_path_); }
  Olmo2 trained_model() const {
    Olmo2 m(cfg_.model);
    m.init(3);
    return m;
  }
  fs::path shard_path_;
  RunConfig cfg_;
};

TEST_F(Robustness, MeasuresWhatPtqAndTheAnalysisMeasure) {
  const TokenShard shard = TokenShard::open(shard_path_.string());
  ProcessGrid grid(MPI_COMM_WORLD, 1);
  RobustnessTracker tracker(cfg_, grid, shard);
  ASSERT_TRUE(tracker.active());
  EXPECT_TRUE(tracker.due(0));
  EXPECT_TRUE(tracker.due(10));
  EXPECT_FALSE(tracker.due(7));
  EXPECT_TRUE(tracker.due(30));  // the last step
  const Olmo2 model = trained_model();
  const RobustnessRecord r = tracker.measure(model, 10, 640);
  EXPECT_EQ(r.step, 10);
  EXPECT_EQ(r.tokens, 640);
  EXPECT_EQ(r.scheme, "rtn-w4a4");

  // The same measurement written out: PTQ of a copy, losses and the analysis on the calibration batch.
  Tensor tokens, targets;
  load_calibration_batch(shard, 8, 5, 0, 3, tokens, targets);
  Olmo2 fp = trained_model(), q = trained_model();
  quantize_model(q, parse_quant_scheme("rtn-w4a4"), cfg_.quant.layers, {tokens});
  Activations act;
  const LossSum lf = fp.forward(tokens, targets, act), lq = q.forward(tokens, targets, act);
  EXPECT_DOUBLE_EQ(r.loss_fp, lf.sum / static_cast<double>(lf.count));
  EXPECT_DOUBLE_EQ(r.loss_quant, lq.sum / static_cast<double>(lq.count));
  EXPECT_DOUBLE_EQ(r.loss_increase, r.loss_quant - r.loss_fp);
  EXPECT_NE(r.loss_increase, 0.0);
  AnalysisOptions opt;
  opt.weight_metrics = false;
  const AnalysisResult a = analyze_model(fp, q, tokens, opt);
  EXPECT_DOUBLE_EQ(r.R_L, a.R_L);
  EXPECT_GT(r.R_L, 0.0);
  EXPECT_DOUBLE_EQ(r.mmr_mean, a.mmr_mean);
  EXPECT_DOUBLE_EQ(r.mmr_tomean_max, a.mmr_tomean_max);
  EXPECT_DOUBLE_EQ(r.kurtosis_max, a.kurtosis_max);
  EXPECT_TRUE(std::isnan(a.layers[0].abc.G1));  // the per-weight metrics are not computed
  EXPECT_GT(r.seconds, 0.0);
  EXPECT_DOUBLE_EQ(tracker.total_seconds(), r.seconds);

  // The metrics.jsonl line and the /metrics curves.
  RobustnessRecord n = r;
  n.mmr_mean = std::numeric_limits<double>::quiet_NaN();
  const std::string line = robustness_json(n);
  EXPECT_EQ(line.rfind("{\"step\":10,\"tokens\":640,\"robustness\":{\"scheme\":\"rtn-w4a4\",\"loss_fp\":", 0),
            0u)
      << line;
  EXPECT_NE(line.find("\"mmr_mean\":null"), std::string::npos) << line;
  EXPECT_EQ(line.back(), '}');
  RunMetrics m;
  append_robustness(m, r);
  append_robustness(m, n);
  ASSERT_EQ(m.extra.size(), 13u);
  EXPECT_EQ(m.extra.at("robustness_step"), (std::vector<double>{10, 10}));
  EXPECT_EQ(m.extra.at("robustness_R_L")[0], r.R_L);
  EXPECT_TRUE(std::isnan(m.extra.at("robustness_mmr_mean")[1]));
}

TEST_F(Robustness, QatRunMeasuresItsOwnQuantizer) {
  cfg_.quant.qat = "quest";
  const TokenShard shard = TokenShard::open(shard_path_.string());
  ProcessGrid grid(MPI_COMM_WORLD, 1);
  RobustnessTracker tracker(cfg_, grid, shard);
  const RobustnessRecord r = tracker.measure(trained_model(), 0, 0);
  EXPECT_EQ(r.scheme, "qat");
  Tensor tokens, targets;
  load_calibration_batch(shard, 8, 5, 0, 3, tokens, targets);
  Olmo2 q = trained_model();
  q.set_linear_quant(make_qat(cfg_.quant));
  Activations act;
  const LossSum lq = q.forward(tokens, targets, act);
  EXPECT_DOUBLE_EQ(r.loss_quant, lq.sum / static_cast<double>(lq.count));
  EXPECT_GT(r.R_L, 0.0);
}

TEST_F(Robustness, ConfigurationErrors) {
  const TokenShard shard = TokenShard::open(shard_path_.string());
  ProcessGrid grid(MPI_COMM_WORLD, 1);
  cfg_.track.scheme = "rtn-w4g5";  // 5 does not divide 16
  std::string e = testing::error_of([&] { RobustnessTracker t(cfg_, grid, shard); });
  EXPECT_NE(e.find("track.scheme = \"rtn-w4g5\""), std::string::npos) << e;
  EXPECT_NE(e.find("does not divide"), std::string::npos) << e;
  cfg_.track.scheme = "rtn-w9";
  e = testing::error_of([&] { RobustnessTracker t(cfg_, grid, shard); });
  EXPECT_NE(e.find("track.scheme"), std::string::npos) << e;
  cfg_.track.scheme = "rtn-w4a4";
  cfg_.track.every = 0;
  RobustnessTracker off(cfg_, grid, shard);
  EXPECT_FALSE(off.active());
  EXPECT_FALSE(off.due(0));
  EXPECT_THROW(off.measure(trained_model(), 0, 0), Error);
}

}  // namespace
}  // namespace quopt
