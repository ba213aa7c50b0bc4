// Resume rules: the checkpoint's config against the one given now. Keys that do not change what the run
// computes may change; anything else is refused naming the keys and both values, unless allowed
// explicitly, and the accepted changes are described for the run's record.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "io/config_agreement.hpp"
#include "io/resume_config.hpp"
#include "io/run_config.hpp"
#include "support/error_of.hpp"

namespace quopt {
namespace {

using testing::error_of;

Config config_with(const std::vector<std::string>& sets) {
  Config c = Config::defaults(quopt_schema());
  for (const auto& s : sets) c.apply_override(s);
  return c;
}

TEST(ResumeConfig, TheKeysThatMayChangeAreExactlyTheDocumentedOnes) {
  for (const char* k :
       {"train.steps", "train.tokens_per_param", "train.log_every", "train.val_every",
        "train.max_nonfinite_skips", "train.device", "train.precision", "track.every", "checkpoint.every",
        "checkpoint.keep", "output.dir", "parallel.pipeline_stages", "parallel.collective_timeout",
        "eval.val_batches", "quant.schemes", "tokenize.vocab_size", "data.tokenizer"})
    EXPECT_TRUE(may_change_on_resume(k)) << k;
  for (const char* k :
       {"train.seed", "optimizer.lr", "optimizer.name", "model.d_model", "data.train", "train.batch_size",
        "train.val_batches", "schedule.name", "quant.qat", "optimizer.adamw.beta2", "train.grad_clip",
        "track.scheme", "checkpointx", "parallelism.x"})
    EXPECT_FALSE(may_change_on_resume(k)) << k;
}

TEST(ResumeConfig, ChangedTrainingKeysAreRefusedNamingEachWithBothValues) {
  const Config before = config_with({"train.seed=3", "optimizer.lr=0.003"});
  const Config now =
      config_with({"train.seed=99", "optimizer.lr=0.01", "train.steps=500", "checkpoint.every=7"});
  const std::string msg = error_of([&] { check_resume_config(before.to_toml(), "ck.h5", now, {}); });
  EXPECT_NE(msg.find("ck.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.seed: 3 in the checkpoint, 99 now"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optimizer.lr: 0.003 in the checkpoint, 0.01 now"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--allow-config-change train.seed --allow-config-change optimizer.lr"),
            std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("train.steps:"), std::string::npos) << "steps may change: " << msg;
  EXPECT_EQ(msg.find("checkpoint.every:"), std::string::npos) << msg;
}

TEST(ResumeConfig, AllowedChangesAreAcceptedAndDescribed) {
  const Config before = config_with({"optimizer.lr=0.003"});
  const Config now = config_with({"optimizer.lr=0.001", "train.steps=500"});
  EXPECT_TRUE(check_resume_config(before.to_toml(), "ck.h5", before, {}).empty()) << "the same config";
  const auto changes = check_resume_config(before.to_toml(), "ck.h5", now, {"optimizer.lr"});
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].key, "train.steps");  // schema order
  EXPECT_FALSE(changes[0].allowed_by_flag);
  EXPECT_EQ(changes[1].key, "optimizer.lr");
  EXPECT_TRUE(changes[1].allowed_by_flag);
  EXPECT_EQ(changes[1].before, "0.003");
  EXPECT_EQ(changes[1].after, "0.001");
  const std::string line = describe_resume(40, "ck.h5", changes);
  EXPECT_EQ(
      line,
      "resumed at step 40 from ck.h5: train.steps 0 -> 500 (may change on resume); optimizer.lr 0.003 -> "
      "0.001 (--allow-config-change)");
  // An unknown key in --allow-config-change is an error with a hint, not a silent no-op.
  EXPECT_NE(error_of([&] {
              check_resume_config(before.to_toml(), "ck.h5", now, {"optimizer.lrr"});
            }).find("optimizer.lr"),
            std::string::npos);
  // A config text this quopt cannot read is refused with the file named.
  EXPECT_NE(error_of([&] { check_resume_config("[model]\nwidth = 3\n", "old.h5", now, {}); }).find("old.h5"),
            std::string::npos);
}

TEST(ConfigAgreement, TheFirstDifferingKeyIsNamedWithBothValues) {
  const Config a = config_with({"optimizer.name=muon"});
  const Config b = config_with({"optimizer.name=muon", "model.d_model=128", "train.seed=5"});
  EXPECT_EQ(first_config_difference(a.to_toml(), a.to_toml()), "");
  EXPECT_EQ(first_config_difference(a.to_toml(), b.to_toml()), "model.d_model = 64 vs 128");
  EXPECT_EQ(first_config_difference("[a]\nx = 1\n", "[a]\nx = 1\ny = 2\n"),
            "a.y (present in only one of them)");
  EXPECT_NE(fnv1a64(a.to_toml()), fnv1a64(b.to_toml()));
  EXPECT_EQ(fnv1a64(""), 1469598103934665603ULL);  // the FNV-1a offset basis
}

}  // namespace
}  // namespace quopt
