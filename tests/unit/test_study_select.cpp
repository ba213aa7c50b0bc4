// The study's selection and common-loss rules (io/study_select.hpp), the snapshot policy
// (io/snapshot.hpp: snapshot_wanted) and the plan's seeds and protocol (io/study.hpp).
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.hpp"
#include "io/snapshot.hpp"
#include "io/study.hpp"
#include "io/study_select.hpp"

namespace fs = std::filesystem;
using quopt::PtqProtocol;
using quopt::RunCurve;
using quopt::RunDecision;

namespace {

RunCurve curve(std::int64_t index, const std::string& size, const std::string& opt, double lr,
               std::int64_t seed, std::vector<double> val, bool qat = false) {
  RunCurve c;
  c.index = index;
  c.size = size;
  c.optimizer = opt;
  c.lr = lr;
  c.seed = seed;
  c.qat = qat;
  for (std::size_t i = 0; i < val.size(); ++i) c.val_step.push_back(static_cast<std::int64_t>(10 * i));
  c.val_loss = std::move(val);
  return c;
}

const RunDecision& of(const std::vector<RunDecision>& d, std::int64_t index) {
  for (const auto& x : d)
    if (x.index == index) return x;
  throw std::runtime_error("no decision for run " + std::to_string(index));
}

}  // namespace

TEST(StudySelect, BestLrByMeanOverSeedsNotBestSingleRun) {
  // lr 1e-3: seeds 3.00 and 3.40 (mean 3.20, holds the single best run); lr 2e-3: 3.10 and 3.15 (mean 3.125).
  const std::vector<RunCurve> runs = {
      curve(0, "s", "adamw", 1e-3, 1, {6.0, 4.0, 3.00}), curve(1, "s", "adamw", 1e-3, 2, {6.0, 4.0, 3.40}),
      curve(2, "s", "adamw", 2e-3, 1, {6.0, 4.0, 3.10}), curve(3, "s", "adamw", 2e-3, 2, {6.0, 4.0, 3.15}),
      curve(4, "s", "adamw", 4e-3, 1, {6.0, 4.0, 3.30}), curve(5, "s", "adamw", 4e-3, 2, {6.0, 4.0, 3.20})};
  const auto d = quopt::select_runs(runs, PtqProtocol::Final);
  for (std::int64_t i : {0, 1, 4, 5}) EXPECT_FALSE(of(d, i).selected) << i;
  for (std::int64_t i : {2, 3}) {
    EXPECT_TRUE(of(d, i).selected) << i;
    EXPECT_EQ(of(d, i).best_lr, 2e-3);
    EXPECT_NEAR(of(d, i).best_mean_loss, 3.125, 1e-12);
    EXPECT_EQ(of(d, i).ptq_step, 20);  // final protocol: the last validation point
    EXPECT_TRUE(std::isnan(of(d, i).threshold));
  }
  EXPECT_NEAR(of(d, 0).lr_mean_loss, 3.20, 1e-12);
  EXPECT_EQ(of(d, 0).lr_seeds, 2);
  EXPECT_EQ(of(d, 0).ptq_step, -1);  // not selected: not quantized
}

TEST(StudySelect, TieKeepsTheSmallerLrAndDivergedRunsLose) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<RunCurve> runs = {curve(0, "s", "muon", 0.04, 1, {6.0, 3.0}),
                                      curve(1, "s", "muon", 0.02, 1, {6.0, 3.0}),
                                      curve(2, "s", "muon", 0.01, 1, {6.0, nan})};  // diverged: +inf
  const auto d = quopt::select_runs(runs, PtqProtocol::Final);
  EXPECT_FALSE(of(d, 0).selected);
  EXPECT_TRUE(of(d, 1).selected);
  EXPECT_FALSE(of(d, 2).selected);
  EXPECT_TRUE(std::isinf(of(d, 2).lr_mean_loss));
}

TEST(StudySelect, CommonThresholdIsTheMaxOverOptimizersOfTheirMinimumAndTheStepTheFirstCrossing) {
  // Size "a": adamw's best run bottoms out at 3.2 (its minimum is not its final point), muon's at 3.5:
  // the common loss is 3.5. adamw first reaches <= 3.5 at its third point (step 20), although it goes
  // lower later; muon reaches its minimum only at the end. Size "b" has its own threshold.
  const std::vector<RunCurve> runs = {
      curve(0, "a", "adamw", 1e-3, 1, {6.0, 3.6, 3.5, 3.2, 3.25}),  // selected (final 3.25)
      curve(1, "a", "adamw", 3e-3, 1, {6.0, 3.4, 3.3, 3.3, 3.30}),  // not selected: final 3.30 > 3.25
      curve(2, "a", "muon", 0.02, 1, {6.0, 4.0, 3.8, 3.6, 3.5}),
      curve(3, "b", "adamw", 1e-3, 1, {6.0, 3.0, 2.9, 2.8, 2.7}),
      curve(4, "b", "muon", 0.02, 1, {6.0, 2.95, 2.9, 2.85, 2.85}),
      curve(5, "a", "adamw", 1e-3, 1, {6.0, 2.0, 2.0, 2.0, 2.0}, /*qat=*/true)};  // QAT: not in the threshold
  const auto d = quopt::select_runs(runs, PtqProtocol::CommonLoss);
  EXPECT_TRUE(of(d, 0).selected);
  EXPECT_FALSE(of(d, 1).selected);  // its 3.3 would not change the threshold either: only selected runs count
  EXPECT_DOUBLE_EQ(of(d, 0).threshold, 3.5);
  EXPECT_DOUBLE_EQ(of(d, 2).threshold, 3.5);
  EXPECT_EQ(of(d, 0).ptq_step, 20);
  EXPECT_DOUBLE_EQ(of(d, 0).ptq_val_loss, 3.5);
  EXPECT_EQ(of(d, 2).ptq_step, 40);
  EXPECT_DOUBLE_EQ(of(d, 3).threshold, 2.85);  // size b: max(2.7, 2.85)
  EXPECT_EQ(of(d, 3).ptq_step, 30);            // 2.8 is the first <= 2.85
  EXPECT_EQ(of(d, 4).ptq_step, 30);            // 2.85 reached first at step 30
  EXPECT_TRUE(of(d, 5).selected);
  EXPECT_EQ(of(d, 5).ptq_step, 40);  // QAT runs are evaluated at their final weights, whatever the protocol
  EXPECT_DOUBLE_EQ(of(d, 5).ptq_val_loss, 2.0);
  EXPECT_TRUE(std::isnan(of(d, 5).threshold));
}

TEST(StudySelect, TheUntrainedModelAtStepZeroIsNeverTheCommonLossPoint) {
  // muon never gets below its initial loss 6.0: the threshold is its best trained point, 6.2, and
  // adamw (initial loss 5.9, already below) is quantized at its first trained point, not at step 0.
  const std::vector<RunCurve> runs = {curve(0, "s", "adamw", 1e-3, 1, {5.9, 5.0, 4.0}),
                                      curve(1, "s", "muon", 0.02, 1, {6.0, 6.3, 6.2})};
  const auto d = quopt::select_runs(runs, PtqProtocol::CommonLoss);
  EXPECT_DOUBLE_EQ(of(d, 0).threshold, 6.2);
  EXPECT_EQ(of(d, 0).ptq_step, 10);
  EXPECT_EQ(of(d, 1).ptq_step, 20);
}

TEST(StudySelect, FirstCrossingAndBadCurves) {
  EXPECT_EQ(quopt::first_crossing({5.0, 4.0, 3.0, 2.0}, 3.5), 2);
  EXPECT_EQ(quopt::first_crossing({5.0, 4.0, 3.0, 2.0}, 3.0), 2);  // <=
  EXPECT_EQ(quopt::first_crossing({5.0, 4.0}, 1.0), -1);
  RunCurve bad = curve(0, "s", "adamw", 1e-3, 1, {6.0, 3.0});
  bad.val_step.pop_back();
  EXPECT_THROW(quopt::select_runs({bad}, PtqProtocol::Final), quopt::Error);
  EXPECT_THROW(quopt::select_runs({curve(0, "s", "adamw", 1e-3, 1, {})}, PtqProtocol::Final), quopt::Error);
}

TEST(SnapshotPolicy, OnlyStrictNewMinimaBeforeTheLastStepAndAfterTheStartFraction) {
  quopt::SnapshotConfig c;
  EXPECT_FALSE(quopt::snapshot_wanted(c, 10, 100, {6.0, 5.0}));  // disabled by default
  c.enabled = true;
  EXPECT_TRUE(quopt::snapshot_wanted(c, 10, 100, {6.0, 5.0}));
  EXPECT_FALSE(quopt::snapshot_wanted(c, 20, 100, {6.0, 5.0, 5.0}));  // equal is no new minimum
  EXPECT_FALSE(quopt::snapshot_wanted(c, 30, 100, {6.0, 5.0, 5.5, 5.2}));
  EXPECT_TRUE(quopt::snapshot_wanted(c, 40, 100, {6.0, 5.0, 5.5, 5.2, 4.9}));
  EXPECT_FALSE(quopt::snapshot_wanted(c, 100, 100, {6.0, 4.0}));  // the last step: run.h5 holds it
  EXPECT_FALSE(quopt::snapshot_wanted(c, 10, 100, {6.0, std::nan("")}));
  c.after_fraction = 0.5;
  EXPECT_FALSE(quopt::snapshot_wanted(c, 40, 100, {6.0, 4.0}));
  EXPECT_TRUE(quopt::snapshot_wanted(c, 50, 100, {6.0, 4.0}));
  // Every first crossing of a threshold the run reaches is a strict new minimum: the policy keeps all
  // the snapshots the common-loss protocol can ask for.
  const std::vector<double> val = {6.0, 5.0, 5.3, 4.8, 4.8, 4.9, 4.5, 4.6};
  c.after_fraction = 0.0;
  for (double thr : {5.0, 4.95, 4.8, 4.6, 4.5}) {
    const auto i = static_cast<std::size_t>(quopt::first_crossing(val, thr));
    const std::vector<double> upto(val.begin(), val.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    EXPECT_TRUE(quopt::snapshot_wanted(c, static_cast<std::int64_t>(i), 1000, upto)) << thr;
  }
}

TEST(StudyPlan, SeedsProtocolAndNames) {
  const fs::path dir = fs::temp_directory_path() / ("quopt_study_plan_" + std::to_string(::getpid()));
  fs::create_directories(dir / "opt");
  std::ofstream(dir / "base.toml") << "[train]\nsteps = 10\n";
  std::ofstream(dir / "m.toml") << "[model]\nname = \"m\"\n";
  std::ofstream(dir / "opt" / "adamw.toml") << "[optimizer]\nname = \"adamw\"\n";
  std::ofstream(dir / "opt" / "muon.toml") << "[optimizer]\nname = \"muon\"\n";
  auto write_study = [&](const std::string& extra) {
    std::ofstream(dir / "study.toml") << "[study]\nname = \"t\"\nbase = \"base.toml\"\nout_dir = \"runs\"\n"
                                         "sizes = [\"m.toml\"]\noptimizers = [\"adamw\", \"muon\"]\n"
                                         "optimizer_dir = \"opt\"\ntokens_per_param = 0\n"
                                      << extra << "[study.lr]\nadamw = [\"1e-3\", \"2e-3\"]\n";
    return (dir / "study.toml").string();
  };
  const quopt::StudyPlan p = quopt::make_study_plan(write_study("seeds = [\"3\", \"4\"]\n"));
  EXPECT_EQ(p.protocol, PtqProtocol::CommonLoss);  // the paper's protocol is the default
  ASSERT_EQ(p.runs.size(), 6u);                    // adamw 2 lrs x 2 seeds + muon (its file's lr) x 2 seeds
  EXPECT_EQ(p.runs[0].name, "m_adamw_lr0.001_s3");
  EXPECT_EQ(p.runs[1].name, "m_adamw_lr0.001_s4");
  EXPECT_EQ(p.runs[1].seed, 4);
  EXPECT_EQ(p.runs[4].name, "m_muon_s3");
  const std::string text = quopt::study_run_config_text(p, p.runs[1]);
  EXPECT_NE(text.find("train.seed = 4"), std::string::npos) << text;
  EXPECT_NE(text.find("snapshot.enabled = true"), std::string::npos) << text;

  const quopt::StudyPlan f = quopt::make_study_plan(write_study("ptq_protocol = \"final\"\n"));
  EXPECT_EQ(f.protocol, PtqProtocol::Final);
  ASSERT_EQ(f.runs.size(), 3u);
  EXPECT_EQ(f.runs[0].name, "m_adamw_lr0.001");  // one seed: no seed in the name, the base config's seed
  const std::string ftext = quopt::study_run_config_text(f, f.runs[0]);
  EXPECT_EQ(ftext.find("snapshot.enabled"), std::string::npos) << ftext;
  EXPECT_EQ(ftext.find("train.seed"), std::string::npos) << ftext;

  // lr_scale: one factor per size multiplies that size's grid.
  const quopt::StudyPlan sc = quopt::make_study_plan(write_study("lr_scale = [\"2.5\"]\n"));
  ASSERT_EQ(sc.runs.size(), 3u);
  EXPECT_DOUBLE_EQ(sc.runs[0].lr, 2.5e-3);
  EXPECT_DOUBLE_EQ(sc.runs[1].lr, 5e-3);
  EXPECT_EQ(sc.runs[1].name, "m_adamw_lr0.005");
  EXPECT_EQ(sc.runs[2].lr, 0.0);  // muon: its file's lr, not scaled
  EXPECT_THROW(quopt::make_study_plan(write_study("lr_scale = [\"1\", \"2\"]\n")), quopt::Error);
  EXPECT_THROW(quopt::make_study_plan(write_study("lr_scale = [\"0\"]\n")), quopt::Error);

  EXPECT_THROW(quopt::make_study_plan(write_study("seeds = [\"1\", \"1\"]\n")), quopt::Error);
  EXPECT_THROW(quopt::make_study_plan(write_study("seeds = [\"x\"]\n")), quopt::Error);
  EXPECT_THROW(quopt::make_study_plan(write_study("ptq_protocol = \"best\"\n")), quopt::Error);
  fs::remove_all(dir);
}
