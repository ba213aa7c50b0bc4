// The training loop's glue, against a reference loop written here from the model's forward/backward and
// the optimizer: which rows each micro-batch gets, the loss and gradient scale (mean over the global
// batch's tokens), global-norm clipping, the learning rate at each step, validation, the metrics it logs
// and the weights it writes to run.h5. AdamW with a large epsilon makes the update proportional to the
// gradient's scale (plain AdamW would hide a wrongly scaled or clipped gradient), and clipping is active.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/batch_loader.hpp"
#include "io/config.hpp"
#include "io/h5file.hpp"
#include "io/run_config.hpp"
#include "io/token_shard.hpp"
#include "kernels/ops.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "train/schedule.hpp"
#include "train/trainer.hpp"

namespace quopt {
namespace {

namespace fs = std::filesystem;

struct Logged {
  double loss = NAN, lr = NAN, grad_norm = NAN, val_loss = NAN;
  std::int64_t tokens = -1;
};

// One number of a metrics.jsonl record ("null" -> NaN, absent -> NaN).
double field(const std::string& line, const std::string& key) {
  const auto p = line.find("\"" + key + "\":");
  if (p == std::string::npos) return NAN;
  const std::string v = line.substr(p + key.size() + 3);
  return v.rfind("null", 0) == 0 ? NAN : std::stod(v);
}

class TrainLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / cat("quopt_train_loop_", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* split : {"train", "val"}) {
      TokenShardWriter w((dir_ / cat(split, ".bin")).string(), 64);
      Rng rng(split[0] == 't' ? 1 : 2, 0);
      std::vector<std::int32_t> ids(6000);
      for (auto& t : ids) t = static_cast<std::int32_t>(rng.uniform() * 64) % 64;
      w.append(std::span<const std::int32_t>(ids));
      w.finish();
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(TrainLoop, MatchesAReferenceLoopStepByStep) {
  Config cfg = Config::defaults(quopt_schema());
  for (const std::string s : {"model.d_model=16",
                              "model.n_layers=2",
                              "model.n_heads=2",
                              "model.vocab_size=64",
                              "model.seq_len=8",
                              "train.steps=6",
                              "train.batch_size=4",
                              "train.micro_batch_size=2",
                              "train.seed=5",
                              "train.grad_clip=0.05",
                              "train.log_every=1",
                              "train.val_every=4",
                              "train.val_batches=2",
                              "optimizer.lr=0.02",
                              "optimizer.adamw.eps=1.0",
                              "optimizer.weight_decay=0.1",
                              "schedule.warmup_fraction=0.34",
                              "schedule.decay_fraction=0.5",
                              "schedule.min_lr_ratio=0.2",
                              "checkpoint.every=0"})
    cfg.apply_override(s);
  cfg.set("data.train", (dir_ / "train.bin").string());
  cfg.set("data.val", (dir_ / "val.bin").string());
  cfg.set("output.dir", (dir_ / "run").string());
  RunConfig rc = make_run_config(cfg);
  rc.raw = std::make_shared<const Config>(cfg);
  TrainOptions opts;
  opts.resolved_toml = cfg.to_toml();
  opts.out_dir = rc.out_dir;
  const TrainSummary summary = train(rc, opts);
  ASSERT_FALSE(summary.interrupted);
  EXPECT_TRUE(fs::exists(dir_ / "run" / "checkpoints" / "step-00000006.h5")) << "the last step checkpoints";

  // The reference.
  const ModelConfig& mc = rc.model;
  const std::int64_t B = 4, MB = 2, T = 8, steps = 6;
  const double dscale = 1.0 / static_cast<double>(B * T);
  Olmo2 model(mc, DType::F32);
  model.init(5);
  auto opt = make_optimizer(rc.optimizer, model.params());
  const TokenShard train_shard = TokenShard::open(rc.data.train), val_shard = TokenShard::open(rc.data.val);
  BatchLoader loader(train_shard, T, 5, BatchOrder::Shuffled),
      val_loader(val_shard, T, 0, BatchOrder::Sequential);
  auto validate = [&] {
    double sum = 0.0, count = 0.0;
    for (std::int64_t b = 0; b < 2; ++b) {
      Tensor in, tg;
      val_loader.load(b, MB, 0, MB, in, tg);
      Activations act;
      const LossSum ls = model.forward(in, tg, act);
      sum += ls.sum;
      count += static_cast<double>(ls.count);
    }
    return sum / count;
  };
  std::map<std::int64_t, Logged> want;
  want[0].val_loss = validate();
  want[0].tokens = 0;
  for (std::int64_t step = 1; step <= steps; ++step) {
    model.params().zero_grads();
    double sum = 0.0;
    for (std::int64_t m = 0; m < B / MB; ++m) {
      Tensor in, tg;
      loader.load(step - 1, B, m * MB, m * MB + MB, in, tg);
      Activations act;
      sum += model.forward(in, tg, act).sum;
      model.backward(act, dscale);
    }
    double ss = 0.0;
    for (const auto& p : model.params().all()) ss += kernels::sum_squares(p.grad);
    const double gnorm = std::sqrt(ss);
    ASSERT_GT(gnorm, 0.05) << "clipping must be active in this test";
    for (auto& p : model.params().all()) kernels::scale(p.grad, 0.05 / (gnorm + 1e-6));
    const double lr = 0.02 * lr_multiplier(rc.schedule, step, steps);
    opt->step(model.params(), lr);
    Logged& w = want[step];
    w.loss = sum * dscale;
    w.grad_norm = gnorm;
    w.lr = lr;
    w.tokens = step * B * T;
    if (step % 4 == 0 || step == steps) w.val_loss = validate();  // and always after the last step
  }

  // What the trainer logged.
  std::ifstream in(dir_ / "run" / "metrics.jsonl");
  std::string line;
  std::int64_t n = 0;
  while (std::getline(in, line)) {
    const auto step = static_cast<std::int64_t>(field(line, "step"));
    ASSERT_TRUE(want.count(step)) << line;
    const Logged& w = want[step];
    SCOPED_TRACE(line);
    EXPECT_EQ(static_cast<std::int64_t>(field(line, "tokens")), w.tokens);
    for (const auto& [key, value] :
         {std::pair{"loss", w.loss}, {"grad_norm", w.grad_norm}, {"lr", w.lr}, {"val_loss", w.val_loss}}) {
      const double got = field(line, key);
      if (std::isnan(value)) {
        EXPECT_TRUE(std::isnan(got) || step == 0) << key;
      } else {
        EXPECT_NEAR(got, value, 1e-6 * std::fabs(value)) << key;  // f32 sums in another order
      }
    }
    ++n;
  }
  EXPECT_EQ(n, steps + 1);
  H5File f = H5File::open_read((dir_ / "run" / "run.h5").string(), MPI_COMM_SELF);
  for (const auto& p : model.params().all()) {
    const Tensor t = f.read("weights/" + p.name);
    for (std::int64_t i = 0; i < t.numel(); ++i)
      ASSERT_NEAR(t.item(i), p.value.item(i), 1e-6 + 1e-5 * std::fabs(p.value.item(i)))
          << p.name << "[" << i << "]";
  }
  // run.h5 describes itself (docs/run-file.md): root attributes and each weight's role and dims.
  EXPECT_EQ(f.get_attr_string("/", "config"), opts.resolved_toml);
  EXPECT_EQ(f.get_attr_int("/", "seed"), 5);
  EXPECT_EQ(f.get_attr_int("/", "world_size"), 1);
  EXPECT_EQ(f.get_attr_int("/", "parameters"), mc.total_params());
  EXPECT_EQ(f.get_attr_int("/", "non_embedding_parameters"), mc.non_embedding_params());
  EXPECT_EQ(f.get_attr_string("/", "model_name"), mc.name);
  EXPECT_FALSE(f.has_attr("/", "resume_history")) << "no resume, no history";
  for (const auto& p : model.params().all()) {
    const std::string role = f.get_attr_string("weights/" + p.name, "role");
    EXPECT_EQ(role, role_name(p.role)) << p.name;
    EXPECT_EQ(f.get_attr_string("weights/" + p.name, "dims"),
              p.role == ParamRole::Gain
                  ? "features"
                  : (p.role == ParamRole::Hidden ? "out_features, in_features" : "vocab, d_model"))
        << p.name;
  }
  // run.h5's curves hold the same numbers.
  const Tensor step_c = f.read("metrics/train_step"), tokens_c = f.read("metrics/tokens"),
               loss_c = f.read("metrics/train_loss"), lr_c = f.read("metrics/lr"),
               gn_c = f.read("metrics/grad_norm");
  ASSERT_EQ(step_c.numel(), steps);
  for (std::int64_t i = 0; i < steps; ++i) {
    const Logged& w = want[i + 1];
    EXPECT_EQ(step_c.item(i), static_cast<double>(i + 1));
    EXPECT_EQ(tokens_c.item(i), static_cast<double>(w.tokens));
    EXPECT_NEAR(loss_c.item(i), w.loss, 1e-6 * w.loss);
    EXPECT_NEAR(lr_c.item(i), w.lr, 1e-15);
    EXPECT_NEAR(gn_c.item(i), w.grad_norm, 1e-6 * w.grad_norm);
  }
  const Tensor vs = f.read("metrics/val_step"), vl = f.read("metrics/val_loss");
  ASSERT_EQ(vs.numel(), 3);  // 0, 4 and the last step 6
  EXPECT_EQ(vs.item(1), 4.0);
  EXPECT_EQ(vs.item(2), 6.0);
  EXPECT_NEAR(vl.item(2), want[6].val_loss, 1e-6 * want[6].val_loss);
}

}  // namespace
}  // namespace quopt
