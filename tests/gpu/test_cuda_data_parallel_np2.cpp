// Data-parallel training on two GPUs over NCCL (two ranks under mpiexec -np 2, one GPU each) against one
// rank: the same batch of 8 sequences, split over the ranks as the trainer does (4 each), against one rank
// running the two halves as two micro-batches. Both accumulate in fp64 (GradSync): the data-parallel sum
// is the NCCL fp64 all-reduce of the two halves' gradients (each bucket started by the backward as its
// block finishes, overlapping the blocks below), the reference the fp64 fold of the same two gradients,
// so the gradients are expected to be the same bits (same kernels, same shapes, the same two-term fp64
// sums); the stated tolerance is 1e-6 relative on every loss and parameter after 20 steps, for GPUs of
// different models on one node. Muon also shards its orthogonalisations over the two ranks and
// all-gathers them over NCCL (grouped broadcasts). Replicas must hold the same bits.
// Skipped (with the reason) without a CUDA build, a GPU, two ranks or two GPUs on the node: NCCL refuses
// two ranks of one communicator on one GPU; failed under QUOPT_REQUIRE_GPU=1 only when there is no GPU.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>

#include "gpu/gpu_test.hpp"
#include "io/run_config.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "parallel/grad_sync.hpp"
#include "support/optim_unit.hpp"

namespace quopt {
namespace {

using testing::to_host;

class CudaDataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    QUOPT_REQUIRE_CUDA();
    int size = 1, rank = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (size != 2) GTEST_SKIP() << "runs under mpiexec -np 2 (" << size << " ranks started)";
    int gpus = kernels::cuda_device_count();
    MPI_Allreduce(MPI_IN_PLACE, &gpus, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (gpus < 2)
      GTEST_SKIP() << "needs 2 GPUs on the node, one per rank (" << gpus
                   << " visible): NCCL refuses two ranks of one communicator on one GPU";
    kernels::cuda_select_device(rank);
    rank_ = rank;
  }
  int rank_ = 0;
};

// A batch of 8 sequences of the tiny permutation task (test_optim's data), the same on every rank.
void batch(const ModelConfig& mc, int step, std::int64_t row0, std::int64_t rows, Tensor& tok, Tensor& tgt) {
  tok = Tensor::empty({rows, mc.seq_len}, DType::I32);
  tgt = Tensor::empty({rows, mc.seq_len}, DType::I32);
  Rng rng(91, static_cast<std::uint64_t>(step));
  for (std::int64_t r = 0; r < 8; ++r)
    for (std::int64_t i = 0; i < mc.seq_len; ++i) {
      const auto t = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(mc.vocab_size)));
      const auto u = static_cast<std::int32_t>((t * 7 + 3) % mc.vocab_size);
      if (r < row0 || r >= row0 + rows) continue;
      tok.data<std::int32_t>()[(r - row0) * mc.seq_len + i] = t;
      tgt.data<std::int32_t>()[(r - row0) * mc.seq_len + i] = u;
    }
}

// Forward and backward of one micro-batch; the last one starts each block's reduction as it finishes.
double forward_backward(Olmo2& model, GradSync& sync, const Tensor& tok, const Tensor& tgt, double dscale,
                        bool last) {
  Activations act;
  const LossSum l = model.forward(tok, tgt, act);
  if (last) {
    model.backward_stage(act, Tensor(), dscale, [&](std::int64_t b) { sync.block_ready(b); });
  } else {
    model.backward(act, dscale);
    sync.micro_batch_done();
  }
  return l.sum;
}

double max_rel(const Tensor& a, const Tensor& b) {
  const Tensor ha = to_host(a), hb = to_host(b);
  double num = 0.0, den = 0.0;
  for (std::int64_t i = 0; i < ha.numel(); ++i) {
    const double x = ha.data<float>()[i], y = hb.data<float>()[i];
    num = std::max(num, std::fabs(x - y));
    den = std::max(den, std::fabs(y));
  }
  return den > 0.0 ? num / den : num;
}

TEST_F(CudaDataParallel, TwoRanksTrainAsOne) {
  for (const char* name : {"adamw", "muon"}) {
    OptimizerConfig oc;
    oc.name = name;
    oc.lr = 3e-3;
    oc.decay_roles = {"hidden"};
    oc.weight_decay = 0.1;
    const ModelConfig mc = testing::tiny_model();
    const std::int64_t T = mc.seq_len;
    const double dscale = 1.0 / static_cast<double>(8 * T);  // mean over the global batch's tokens

    Olmo2 dp(mc, DType::F32, {}, Device::Cuda), one(mc, DType::F32, {}, Device::Cuda);
    dp.init(21);
    one.init(21);
    OptimizerContext ctx;
    ctx.data = MPI_COMM_WORLD;
    auto opt_dp = make_optimizer(oc, dp.params(), ctx);
    auto opt_one = make_optimizer(oc, one.params());
    GradSync sync_dp(MPI_COMM_WORLD, dp.params()), sync_one(MPI_COMM_SELF, one.params());

    double worst_loss = 0.0;
    for (int step = 1; step <= 20; ++step) {
      Tensor tok, tgt;
      dp.params().zero_grads();
      batch(mc, step, 4 * rank_, 4, tok, tgt);
      double loss_dp = forward_backward(dp, sync_dp, tok, tgt, dscale, true);
      sync_dp.finish();
      MPI_Allreduce(MPI_IN_PLACE, &loss_dp, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      opt_dp->step(dp.params(), oc.lr);

      one.params().zero_grads();
      double loss_one = 0.0;
      for (int m = 0; m < 2; ++m) {
        batch(mc, step, 4 * m, 4, tok, tgt);
        loss_one += forward_backward(one, sync_one, tok, tgt, dscale, m == 1);
      }
      sync_one.finish();
      opt_one->step(one.params(), oc.lr);
      worst_loss = std::max(worst_loss, std::fabs(loss_dp - loss_one) / loss_one);
    }
    EXPECT_LE(worst_loss, 1e-6) << name << ": the data-parallel loss left the one-rank loss";
    for (const auto& p : one.params().all()) {
      const Tensor& w = dp.params().get(p.name).value;
      EXPECT_LE(max_rel(w, p.value), 1e-6) << name << " " << p.name << " after 20 steps";
      // The replicas hold the same bits: rank 1's copy against rank 0's.
      const Tensor mine = to_host(w);
      Tensor theirs = mine.clone();
      MPI_Bcast(theirs.raw(), static_cast<int>(theirs.numel()), MPI_FLOAT, 0, MPI_COMM_WORLD);
      EXPECT_EQ(max_rel(mine, theirs), 0.0) << name << " " << p.name << ": the replicas differ";
    }
  }
}

}  // namespace
}  // namespace quopt
