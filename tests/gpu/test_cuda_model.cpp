// The whole OLMo2 model on the GPU against the host: the loss and every parameter gradient of one
// forward/backward in the fp32 mode (strict fp32 GEMMs) to 1e-4 relative (norm-wise, per tensor), and the
// loss in the bf16 GEMM mode to 2e-2; then 50 training steps of each optimizer with a CUDA path on the
// tiny permutation task, the GPU loss curve within 2e-3 (relative, every step) of the host's in the fp32
// mode. Skipped without a CUDA build or a GPU (failed under QUOPT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cmath>

#include "gpu/gpu_test.hpp"
#include "io/run_config.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "support/optim_unit.hpp"
#include "unit/kernel_test_util.hpp"

namespace quopt {
namespace {

using testing::to_host;

ModelConfig gqa_model(MlpKind mlp) {
  ModelConfig mc = testing::tiny_model();
  mc.n_heads = 4;
  mc.n_kv_heads = 2;  // grouped KV heads
  mc.mlp = mlp;
  mc.z_loss = 1e-4;
  return mc;
}

void batch(const ModelConfig& mc, std::int64_t B, Tensor& tok, Tensor& tgt) {
  tok = Tensor::empty({B, mc.seq_len}, DType::I32);
  tgt = Tensor::empty({B, mc.seq_len}, DType::I32);
  Rng rng(5, 6);
  for (std::int64_t i = 0; i < tok.numel(); ++i) {
    tok.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(mc.vocab_size)));
    tgt.data<std::int32_t>()[i] =
        i % 5 == 4 ? -1 : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(mc.vocab_size)));
  }
}

class CudaModel : public ::testing::Test {
 protected:
  void SetUp() override { QUOPT_REQUIRE_CUDA(); }
  void TearDown() override { kernels::set_matmul_precision(kernels::MatmulPrecision::FP32); }
};

TEST_F(CudaModel, LossAndGradientsMatchTheHostInFp32Mode) {
  for (const MlpKind mlp : {MlpKind::Relu2, MlpKind::SwiGLU}) {
    const ModelConfig mc = gqa_model(mlp);
    Olmo2 host(mc), dev(mc, DType::F32, {}, Device::Cuda);
    host.init(11);
    dev.init(11);
    Tensor tok, tgt;
    batch(mc, 4, tok, tgt);
    Activations ah, ad;
    const LossSum lh = host.forward(tok, tgt, ah);
    const LossSum ld = dev.forward(tok, tgt, ad);
    EXPECT_EQ(ld.count, lh.count);
    EXPECT_NEAR(ld.sum, lh.sum, 1e-5 * std::fabs(lh.sum));
    host.backward(ah, 1.0 / static_cast<double>(lh.count));
    dev.backward(ad, 1.0 / static_cast<double>(ld.count));
    for (const auto& p : host.params().all()) {
      const Tensor g = to_host(dev.params().get(p.name).grad);
      testing::expect_close(p.name + " gradient", g, testing::values(p.grad), 1e-4);
    }
  }
}

TEST_F(CudaModel, Bf16ComputeModeStaysCloseToFp32) {
  const ModelConfig mc = gqa_model(MlpKind::Relu2);
  Olmo2 host(mc), dev(mc, DType::F32, {}, Device::Cuda);
  host.init(12);
  dev.init(12);
  Tensor tok, tgt;
  batch(mc, 4, tok, tgt);
  Activations ah, ad;
  const LossSum lh = host.forward(tok, tgt, ah);
  kernels::set_matmul_precision(kernels::MatmulPrecision::BF16);
  const LossSum ld = dev.forward(tok, tgt, ad);
  EXPECT_NEAR(ld.sum / ld.count, lh.sum / lh.count, 2e-2 * lh.sum / lh.count);
}

TEST_F(CudaModel, OptimizersTrackTheHostLossCurve) {
  for (const char* name : {"adamw", "muon"}) {
    OptimizerConfig oc;
    oc.name = name;
    oc.lr = 3e-3;
    oc.decay_roles = {"hidden"};
    const ModelConfig mc = testing::tiny_model();
    Olmo2 host(mc), dev(mc, DType::F32, {}, Device::Cuda);
    host.init(13);
    dev.init(13);
    auto oh = make_optimizer(oc, host.params());
    auto od = make_optimizer(oc, dev.params());
    double worst = 0.0, first_h = 0.0, first_d = 0.0, last_h = 0.0, last_d = 0.0;
    for (int s = 1; s <= 50; ++s) {
      // One step each; train_tiny(..., 1) draws the same batch at every call, so this is 50 steps on one
      // batch of the permutation task, the same for both.
      last_h = testing::train_tiny(*oh, host, 1, oc.lr, s == 1 ? &first_h : nullptr);
      last_d = testing::train_tiny(*od, dev, 1, oc.lr, s == 1 ? &first_d : nullptr);
      worst = std::max(worst, std::fabs(last_d - last_h) / last_h);
    }
    EXPECT_LE(worst, 2e-3) << name << ": GPU loss left the host curve";
    EXPECT_LT(last_d, 0.5 * first_d) << name << ": the GPU run did not learn (" << first_d << " -> " << last_d << ")";
  }
}

TEST_F(CudaModel, OptimizersWithoutADevicePathSayIt) {
  const ModelConfig mc = testing::tiny_model();
  Olmo2 dev(mc, DType::F32, {}, Device::Cuda);
  for (const char* name : {"scion", "shampoo", "soap", "psgd"}) {
    OptimizerConfig oc;
    oc.name = name;
    testing::expect_error([&] { make_optimizer(oc, dev.params()); }, {name, "no CUDA path"});
  }
}

}  // namespace
}  // namespace quopt
