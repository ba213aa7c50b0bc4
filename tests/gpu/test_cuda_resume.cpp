// A GPU run's checkpoint resumes on the CPU, and a CPU run's on the GPU (train.device may change on resume,
// docs/reliability.md; checkpoints and run.h5 are written from host copies of the device tensors). The
// tiny model trains 8 steps with a checkpoint every 4: all on the CPU, all on the GPU, 4 on the GPU then 4
// on the CPU from the GPU's step-4 checkpoint, and the reverse. The GPU's checkpoints and run file have
// the CPU's layout (same datasets, dtypes, shapes, root attributes), and every mixed run ends within the
// stated bound of the all-CPU run (fp32 mode). Skipped without a CUDA build or a GPU (failed under
// QUOPT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "gpu/gpu_test.hpp"
#include "io/config.hpp"
#include "io/h5file.hpp"
#include "io/run_config.hpp"
#include "io/token_shard.hpp"
#include "support/h5_layout.hpp"
#include "support/temp_dir.hpp"
#include "train/trainer.hpp"

namespace quopt {
namespace {

// AdamW with eps = 1 makes each update proportional to the gradient (as test_train_loop does), so the
// backends' fp32 rounding differences (about 1e-6 relative in the gradients, test_cuda_model) stay that
// size in the weights instead of flipping the sign-like first steps of plain AdamW. Bound: 1e-4 relative,
// for every logged loss and norm-wise for every weight of the final run file. A resume that lost the AdamW
// moments ends 0.7% to 1% away from the all-CPU run in the MLP weights (measured on the host), 70 to 100
// times the bound.
constexpr double kBound = 1e-4;

class CudaResume : public ::testing::Test {
 protected:
  void SetUp() override {
    QUOPT_REQUIRE_CUDA();
    for (const char* split : {"train", "val"}) {
      TokenShardWriter w(dir_.file(cat(split, ".bin")), 64);
      Rng rng(split[0] == 't' ? 1 : 2, 0);
      std::vector<std::int32_t> ids(6000);
      for (auto& t : ids) t = static_cast<std::int32_t>(rng.below(64));
      w.append(std::span<const std::int32_t>(ids));
      w.finish();
    }
  }

  // Trains run `name` on `device` (from `resume` when given) and returns its directory.
  std::string run(const std::string& name, const std::string& device, const std::string& resume = "") {
    Config cfg = Config::defaults(quopt_schema());
    for (const std::string s :
         {"model.d_model=32", "model.n_layers=2", "model.n_heads=4", "model.n_kv_heads=2", "model.vocab_size=64",
          "model.seq_len=16", "train.steps=8", "train.batch_size=8", "train.micro_batch_size=4", "train.seed=5",
          "train.log_every=1", "train.val_every=4", "train.val_batches=2", "optimizer.lr=0.02",
          "optimizer.adamw.eps=1.0", "optimizer.weight_decay=0.1", "checkpoint.every=4", "checkpoint.keep=4"})
      cfg.apply_override(s);
    cfg.set("train.device", device);
    cfg.set("data.train", dir_.file("train.bin"));
    cfg.set("data.val", dir_.file("val.bin"));
    cfg.set("output.dir", dir_.file(name));
    RunConfig rc = make_run_config(cfg);
    rc.raw = std::make_shared<const Config>(cfg);
    TrainOptions opts;
    opts.resolved_toml = cfg.to_toml();
    opts.out_dir = rc.out_dir;
    opts.resume = resume;
    const TrainSummary s = train(rc, opts);
    EXPECT_FALSE(s.interrupted) << name;
    EXPECT_EQ(s.last_step, 8) << name;
    return rc.out_dir;
  }

  testing::TempDir dir_;
};

// DIR/checkpoints/step-NNNNNNNN.h5 (io/checkpoint.hpp).
std::string checkpoint(const std::string& run_dir, int step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08d.h5", step);
  return cat(run_dir, "/checkpoints/", name);
}

// Largest |a - b| over a dataset relative to its largest |b|.
double rel_diff(const Tensor& a, const Tensor& b) {
  double diff = 0.0, scale = 0.0;
  for (std::int64_t i = 0; i < b.numel(); ++i) {
    diff = std::max(diff, std::fabs(a.item(i) - b.item(i)));
    scale = std::max(scale, std::fabs(b.item(i)));
  }
  return diff / std::max(scale, 1e-300);
}

// The run file `got` against the all-CPU one: every weight norm-wise, every logged training loss and
// validation loss; returns the largest relative difference seen.
double compare_run_files(const std::string& got, const std::string& want) {
  const H5File g = H5File::open_read(got, MPI_COMM_SELF), w = H5File::open_read(want, MPI_COMM_SELF);
  double worst = 0.0;
  for (const auto& [path, layout] : testing::h5_datasets(w, "weights")) {
    const double d = rel_diff(g.read(path), w.read(path));
    EXPECT_LE(d, kBound) << got << ": " << path;
    worst = std::max(worst, d);
  }
  for (const char* curve : {"metrics/train_loss", "metrics/val_loss"}) {
    const Tensor a = g.read(curve), b = w.read(curve);
    EXPECT_EQ(a.numel(), b.numel()) << got << ": " << curve;
    for (std::int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) {
      const double d = std::fabs(a.item(i) - b.item(i)) / std::fabs(b.item(i));
      EXPECT_LE(d, kBound) << got << ": " << curve << "[" << i << "]";
      worst = std::max(worst, d);
    }
  }
  return worst;
}

TEST_F(CudaResume, CheckpointsMoveBetweenGpuAndCpu) {
  const std::string cpu = run("cpu", "cpu"), gpu = run("gpu", "cuda");
  // Layout: the GPU's checkpoints and run file are the CPU's, dataset for dataset.
  for (const int step : {4, 8}) testing::expect_same_layout(checkpoint(gpu, step), checkpoint(cpu, step));
  testing::expect_same_layout(gpu + "/run.h5", cpu + "/run.h5");

  // 4 steps on the GPU, then 4 on the CPU from the GPU's checkpoint; and the reverse.
  const std::string g2c = run("gpu-then-cpu", "cpu", checkpoint(gpu, 4));
  const std::string c2g = run("cpu-then-gpu", "cuda", checkpoint(cpu, 4));
  testing::expect_same_layout(checkpoint(c2g, 8), checkpoint(cpu, 8));
  for (const std::string& dir : {g2c, c2g}) testing::expect_same_layout(dir + "/run.h5", cpu + "/run.h5", {"resume_history"});
  for (const std::string& dir : {g2c, c2g}) {
    // The device change is accepted and recorded with the resume.
    const H5File f = H5File::open_read(dir + "/run.h5", MPI_COMM_SELF);
    EXPECT_NE(f.get_attr_string("/", "resume_history").find("train.device"), std::string::npos) << dir;
  }

  const double d_gpu = compare_run_files(gpu + "/run.h5", cpu + "/run.h5");
  const double d_g2c = compare_run_files(g2c + "/run.h5", cpu + "/run.h5");
  const double d_c2g = compare_run_files(c2g + "/run.h5", cpu + "/run.h5");
  std::printf("largest relative difference to the all-CPU run (bound %.0e): all GPU %.3g, GPU then CPU %.3g, "
              "CPU then GPU %.3g\n",
              kBound, d_gpu, d_g2c, d_c2g);
  // The training moved the weights far more than the bound, so agreeing within it means something.
  const H5File first = H5File::open_read(checkpoint(cpu, 4), MPI_COMM_SELF),
               last = H5File::open_read(cpu + "/run.h5", MPI_COMM_SELF);
  EXPECT_GT(rel_diff(first.read("weights/block.01/mlp_down"), last.read("weights/block.01/mlp_down")),
            100 * kBound)
      << "steps 5..8 hardly changed the weights";
}

}  // namespace
}  // namespace quopt
