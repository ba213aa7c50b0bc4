// Checkpoints (run under mpiexec at np 1, 2, 4; at even rank counts the model is split into 2 pipeline
// stages, so each rank writes the tensors it owns): a round trip restores everything; exactly the newest
// checkpoint.keep files remain; every load verifies the file (marked complete, checksums, finite weights
// and state, a quopt checkpoint at all) and --resume auto falls back past a bad file to the newest good
// one; a checkpoint whose weights hold NaN/inf is never written.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.hpp"
#include "io/checkpoint.hpp"
#include "io/h5file.hpp"
#include "io/owned_tensors.hpp"
#include "io/run_config.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "parallel/grid.hpp"
#include "support/error_of.hpp"
#include "support/optim_mpi.hpp"
#include "support/optim_unit.hpp"

namespace quopt {
namespace {

namespace fs = std::filesystem;
using testing::all_ranks;
using testing::error_of;
using testing::tiny_model;
using testing::world_rank;

// A model split over the ranks (2 stages when the rank count is even), stepped once so that the AdamW
// state is not zero.
struct TinyRun {
  ProcessGrid grid{MPI_COMM_WORLD, testing::world_size() % 2 == 0 ? 2 : 1};
  Olmo2 model{tiny_model(), DType::F32, stage_spec(tiny_model(), grid.stage(), grid.stages())};
  std::unique_ptr<Optimizer> opt;
  RunMetrics metrics;
  TinyRun() {
    model.init(5);
    OptimizerContext ctx;
    ctx.data = grid.data();
    opt = make_optimizer(OptimizerConfig{}, model.params(), ctx);
    for (auto& p : model.params().all())
      for (std::int64_t i = 0; i < p.grad.numel(); ++i)
        p.grad.data<float>()[i] = 0.01f * static_cast<float>(i % 7);
    opt->step(model.params(), 1e-3);
    metrics.step = {1, 2};
    metrics.loss = {3.0, std::nan("")};  // a skipped step's loss: the curves may hold NaN
    metrics.tokens = {10, 20};
    metrics.lr = {1e-3, 2e-3};
    metrics.grad_norm = {0.5, std::nan("")};
    metrics.val_step = {0, 2};
    metrics.val_loss = {4.5, 4.25};
  }
  std::string save(const std::string& dir, std::int64_t step, std::int64_t keep = 10) {
    return save_checkpoint(dir, grid, model.params(), *opt, metrics, CheckpointMeta{step, "cfg", "history"},
                           keep);
  }
};

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string d;
    if (world_rank() == 0) {
      const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
      d = (fs::temp_directory_path() / cat("quopt_ckpt_", ::getpid(), "_", info->name())).string();
      fs::remove_all(d);
      fs::create_directories(d);
    }
    long long n = static_cast<long long>(d.size());
    MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    d.resize(static_cast<std::size_t>(n));
    MPI_Bcast(d.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
    dir_ = d;
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) fs::remove_all(dir_);
  }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(checkpoint_dir(dir_)))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string dir_;
};

// Rank 0 writes a text file (creating its directory); every rank waits for it.
void write_on_rank0(const std::string& path, const std::string& text) {
  if (world_rank() == 0) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// Rank 0 edits a checkpoint file on its own: overwrites a dataset and/or an attribute.
void edit(const std::string& path, const std::function<void(H5File&)>& f) {
  if (world_rank() == 0) {
    H5File h = H5File::open_rw(path, MPI_COMM_SELF);
    f(h);
    h.close();
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// The manifest with `name`'s checksum replaced by that of t (a change the checksums cannot see).
std::string manifest_with(const H5File& h, const std::string& name, const Tensor& t) {
  std::istringstream in(h.get_attr_string("/", "manifest"));
  std::string line, out;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(tensor_checksum(t)));
  while (std::getline(in, line)) out += (line.rfind(name + "\t", 0) == 0 ? name + "\t" + hex : line) + "\n";
  return out;
}

TEST_F(CheckpointTest, RoundTripRestoresWeightsStateMetricsAndRecord) {
  TinyRun a;
  const std::string path = a.save(dir_, 7);
  EXPECT_EQ(fs::path(path).filename(), "step-00000007.h5");
  TinyRun b;  // the same initial state, then changed everywhere
  for (auto& p : b.model.params().all()) p.value.zero_();
  for (auto& s : b.opt->state()) s.tensor.zero_();
  RunMetrics m;
  const LoadedCheckpoint ck = load_checkpoint(path, MPI_COMM_WORLD, b.model.params(), *b.opt, m);
  EXPECT_EQ(ck.step, 7);
  EXPECT_EQ(ck.config_toml, "cfg");
  EXPECT_EQ(ck.resume_history, "history");
  EXPECT_EQ(b.opt->steps_taken(), a.opt->steps_taken());
  bool same = true;
  for (std::size_t k = 0; k < a.model.params().all().size(); ++k) {
    const Tensor& x = a.model.params().all()[k].value;
    const Tensor& y = b.model.params().all()[k].value;
    same = same && std::equal(x.data<float>(), x.data<float>() + x.numel(), y.data<float>());
  }
  auto sa = a.opt->state(), sb = b.opt->state();
  for (std::size_t k = 0; k < sa.size(); ++k)
    same = same && std::equal(sa[k].tensor.data<float>(), sa[k].tensor.data<float>() + sa[k].tensor.numel(),
                              sb[k].tensor.data<float>());
  EXPECT_TRUE(all_ranks(same));
  EXPECT_EQ(m.step, a.metrics.step);
  EXPECT_EQ(m.tokens, a.metrics.tokens);
  EXPECT_EQ(m.lr, a.metrics.lr);
  EXPECT_EQ(m.val_step, a.metrics.val_step);
  EXPECT_EQ(m.val_loss, a.metrics.val_loss);
  EXPECT_EQ(m.loss[0], 3.0);
  EXPECT_TRUE(std::isnan(m.loss[1]));
  EXPECT_EQ(m.grad_norm[0], 0.5);
  EXPECT_TRUE(std::isnan(m.grad_norm[1]));
}

TEST_F(CheckpointTest, ExactlyTheNewestKeepCheckpointsRemain) {
  TinyRun a;
  // Other files in the directory are not checkpoints: never counted, pruned or resumed from.
  write_on_rank0(checkpoint_dir(dir_) + "/zz-notes.h5", "a user's file");
  for (std::int64_t keep : {1, 2, 3}) {
    for (std::int64_t step = 1; step <= 5; ++step) a.save(dir_, 10 * keep + step, keep);
    std::vector<std::string> want;
    for (std::int64_t step = 5 - keep + 1; step <= 5; ++step)
      want.push_back(cat("step-000000", 10 * keep + step, ".h5"));
    want.push_back("zz-notes.h5");
    EXPECT_EQ(files(), want) << "keep = " << keep;
  }
  EXPECT_EQ(find_latest_checkpoint(dir_, MPI_COMM_WORLD), checkpoint_dir(dir_) + "/step-00000035.h5");
}

TEST_F(CheckpointTest, TheManifestListsEveryDatasetSortedWithItsChecksum) {
  TinyRun a;
  const std::string path = a.save(dir_, 3);
  bool ok = true;
  if (world_rank() == 0) {
    const H5File h = H5File::open_read(path, MPI_COMM_SELF);
    std::istringstream in(h.get_attr_string("/", "manifest"));
    std::vector<std::string> names;
    std::string line;
    while (std::getline(in, line)) {
      const std::string name = line.substr(0, line.find('\t'));
      names.push_back(name);
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx",
                    static_cast<unsigned long long>(tensor_checksum(h.read(name))));
      ok = ok && line.substr(line.find('\t') + 1) == hex;
    }
    ok = ok && std::is_sorted(names.begin(), names.end());
    // every weight (all stages together), every optimizer slot, every curve
    std::size_t weights = 0;
    for (const auto& n : names) weights += n.rfind("weights/", 0) == 0 ? 1 : 0;
    ok = ok && weights == olmo2_param_specs(tiny_model()).size();
    ok = ok && std::count(names.begin(), names.end(), "metrics/val_loss") == 1;
    ok = ok && std::count(names.begin(), names.end(), "optimizer/block.01/mlp_up/exp_avg_sq") == 1;
  }
  EXPECT_TRUE(all_ranks(ok));
}

TEST_F(CheckpointTest, EveryLoadVerifiesAndAutoFallsBackToTheNewestGoodOne) {
  TinyRun a;
  const std::string good = a.save(dir_, 10);
  struct Bad {
    std::int64_t step;
    std::string why;
    std::function<void(H5File&)> damage;
  };
  const std::string w = "weights/block.00/attn_q";
  const std::vector<Bad> bad = {
      {11, "not marked complete", [](H5File& h) { h.set_attr("/", "complete", std::int64_t{0}); }},
      {12, "checksum mismatch in " + w,
       [&](H5File& h) {  // one flipped bit in a weight
         Tensor t = h.read(w);
         auto* bytes = static_cast<unsigned char*>(t.raw());
         bytes[5] ^= 0x10;
         h.write(w, t);
       }},
      {13, w + " holds 1 non-finite value",
       [&](H5File& h) {  // a NaN the checksums agree with: what an unchecked diverged run wrote
         Tensor t = h.read(w);
         t.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
         h.write(w, t);
         h.set_attr("/", "manifest", manifest_with(h, w, t));
       }},
      {14, "not a quopt checkpoint",
       [](H5File& h) {
         h.remove("weights");
         h.set_attr("/", "format", std::string("x"));
       }},
  };
  for (const auto& b : bad) {
    const std::string p = a.save(dir_, b.step);
    if (b.step == 14) {  // a foreign HDF5 file under a checkpoint's name
      if (world_rank() == 0) {
        fs::remove(p);
        H5File h = H5File::create(p, MPI_COMM_SELF);
        h.set_attr("/", "hello", std::string("world"));
        h.close();
      }
      MPI_Barrier(MPI_COMM_WORLD);
    } else {
      edit(p, b.damage);
    }
    const std::string why = verify_checkpoint(p);
    EXPECT_NE(why.find(b.why), std::string::npos) << "step " << b.step << ": " << why;
    TinyRun c;
    RunMetrics m;
    const std::string msg =
        error_of([&] { load_checkpoint(p, MPI_COMM_WORLD, c.model.params(), *c.opt, m); });
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find(b.why), std::string::npos) << msg;
    // The damaged file is the newest: auto skips it (and every newer damaged one) for the good one.
    EXPECT_EQ(find_latest_checkpoint(dir_, MPI_COMM_WORLD), good) << "step " << b.step;
  }
  EXPECT_EQ(verify_checkpoint(good), "");
  const std::string text = dir_ + "/text.h5";
  write_on_rank0(text, "not HDF5 at all");
  EXPECT_NE(verify_checkpoint(text).find("not an HDF5 file"), std::string::npos) << verify_checkpoint(text);
  EXPECT_EQ(find_latest_checkpoint(dir_ + "/nothing", MPI_COMM_WORLD), std::nullopt);
}

TEST_F(CheckpointTest, NonFiniteWeightsOrStateAreNeverWritten) {
  TinyRun a;
  const std::string first = a.save(dir_, 4);
  // The last rank's first parameter turns NaN: every rank refuses, naming it; nothing new on disk.
  Parameter& p = a.model.params().all().front();
  if (world_rank() == testing::world_size() - 1)
    p.value.data<float>()[0] = std::numeric_limits<float>::infinity();
  const std::string msg = error_of([&] { a.save(dir_, 5); });
  EXPECT_NE(msg.find("not writing checkpoint"), std::string::npos) << msg;
  EXPECT_NE(msg.find("weights/"), std::string::npos) << msg;
  if (world_rank() == testing::world_size() - 1) {
    EXPECT_NE(msg.find("weights/" + p.name), std::string::npos) << msg;
  }
  EXPECT_EQ(files(), std::vector<std::string>{"step-00000004.h5"});
  // Every rank has listed the directory before any opens the file: an MPI-IO open may leave a transient
  // "<file>.locktest.0" beside it, which another rank's listing would see.
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_EQ(verify_checkpoint(first), "");
  p.value.data<float>()[0] = 0.0f;
  auto state = a.opt->state();
  if (world_rank() == 0) state.front().tensor.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(error_of([&] { a.save(dir_, 6); }).find("optimizer/"), std::string::npos);
  EXPECT_EQ(files(), std::vector<std::string>{"step-00000004.h5"});
}

TEST_F(CheckpointTest, InterruptedWritesLeftBehindAreRemovedByTheNextSave) {
  TinyRun a;
  write_on_rank0(checkpoint_dir(dir_) + "/step-00000003.h5.tmp", "killed mid-write");
  a.save(dir_, 4);
  EXPECT_EQ(files(), std::vector<std::string>{"step-00000004.h5"});
}

}  // namespace
}  // namespace quopt
