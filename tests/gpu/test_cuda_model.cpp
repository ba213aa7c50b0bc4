// The whole OLMo2 model on the GPU against the host: the loss and every parameter gradient of one
// forward/backward in the fp32 mode (strict fp32 GEMMs) to 1e-4 relative (norm-wise, per tensor), and the
// loss in the bf16 GEMM mode to 2e-2; then 50 training steps of each optimizer with a CUDA path on the
// tiny permutation task, the GPU loss curve within a stated bound (relative, every step; per optimizer,
// below) of the host's in the fp32 mode. Skipped without a CUDA build or a GPU (failed under
// QUOPT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

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
    tok.data<std::int32_t>()[i] =
        static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(mc.vocab_size)));
    tgt.data<std::int32_t>()[i] =
        i % 5 == 4 ? -1 : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(mc.vocab_size)));
  }
}

// One model (config, seed) twice: on the host and on the GPU.
struct TwinModels {
  Olmo2 host, dev;
  TwinModels(const ModelConfig& mc, std::uint64_t seed) : host(mc), dev(mc, DType::F32, {}, Device::Cuda) {
    host.init(seed);
    dev.init(seed);
  }
};

class CudaModel : public ::testing::Test {
 protected:
  void SetUp() override { QUOPT_REQUIRE_CUDA(); }
  void TearDown() override { kernels::set_matmul_precision(kernels::MatmulPrecision::FP32); }
};

// Both heads: the fused classifier computing its gradients in the forward (a training forward,
// head_dscale set, as the trainer runs it) and in a second pass from the backward (head_dscale 0).
TEST_F(CudaModel, LossAndGradientsMatchTheHostInFp32Mode) {
  for (const MlpKind mlp : {MlpKind::Relu2, MlpKind::SwiGLU}) {
    for (const bool training_forward : {true, false}) {
      SCOPED_TRACE(training_forward ? "head gradients in the forward" : "head gradients in the backward");
      const ModelConfig mc = gqa_model(mlp);
      TwinModels m(mc, 11);
      Olmo2 &host = m.host, &dev = m.dev;
      Tensor tok, tgt;
      batch(mc, 4, tok, tgt);
      std::int64_t counted = 0;
      for (std::int64_t i = 0; i < tgt.numel(); ++i) counted += tgt.data<std::int32_t>()[i] >= 0 ? 1 : 0;
      const double dscale = 1.0 / static_cast<double>(counted);
      Activations ah, ad;
      ah.head_dscale = ad.head_dscale = training_forward ? dscale : 0.0;
      const LossSum lh = host.forward(tok, tgt, ah);
      const LossSum ld = dev.forward(tok, tgt, ad);
      EXPECT_EQ(ld.count, lh.count);
      EXPECT_EQ(lh.count, counted);
      EXPECT_NEAR(ld.sum, lh.sum, 1e-5 * std::fabs(lh.sum));
      host.backward(ah, dscale);
      dev.backward(ad, dscale);
      for (const auto& p : host.params().all()) {
        const Tensor g = to_host(dev.params().get(p.name).grad);
        testing::expect_close(p.name + " gradient", g, testing::values(p.grad), 1e-4);
      }
    }
  }
}

TEST_F(CudaModel, Bf16ComputeModeStaysCloseToFp32) {
  const ModelConfig mc = gqa_model(MlpKind::Relu2);
  TwinModels m(mc, 12);
  Tensor tok, tgt;
  batch(mc, 4, tok, tgt);
  Activations ah, ad;
  const LossSum lh = m.host.forward(tok, tgt, ah);
  kernels::set_matmul_precision(kernels::MatmulPrecision::BF16);
  const LossSum ld = m.dev.forward(tok, tgt, ad);
  EXPECT_NEAR(ld.sum / ld.count, lh.sum / lh.count, 2e-2 * lh.sum / lh.count);
}

// Each optimizer with a CUDA path, at the learning rate its unit test trains the tiny model with, with the
// bound its GPU loss curve must keep to the host's (relative, or relative to 0.1 once the loss is below,
// at every one of 50 steps):
//   adamw, muon: 2e-3, fp32 rounding differences grow slowly through the smooth updates;
//   scion: 1e-2, its Sign LMO of the head turns an element's rounding difference near 0 into a full step;
//   shampoo, soap: 1e-2, cuSOLVER's and LAPACK's eigendecompositions (and SOAP's QR) of the fp32 factors
//   differ in rounding, amplified by the inverse roots / the eigenbasis;
//   psgd: 1e-2, cuBLAS's and OpenBLAS's triangular products and solves of the factors differ in rounding,
//   amplified by the factor updates (same probes: drawn on the host from one counter-based stream).
struct Track {
  const char* name;
  double lr;
  double bound;
};

TEST_F(CudaModel, OptimizersTrackTheHostLossCurve) {
  for (const Track& tr :
       {Track{"adamw", 3e-3, 2e-3}, Track{"muon", 3e-3, 2e-3}, Track{"scion", 3.6e-4, 1e-2},
        Track{"shampoo", 1e-2, 1e-2}, Track{"soap", 1e-2, 1e-2}, Track{"psgd", 3e-3, 1e-2}}) {
    OptimizerConfig oc;
    oc.name = tr.name;
    oc.lr = tr.lr;
    oc.decay_roles = {"hidden"};
    oc.weight_decay = std::string(tr.name) == "scion" ? 0.0 : 0.1;  // Scion's decay is its constraint
    TwinModels m(testing::tiny_model(), 13);
    Olmo2 &host = m.host, &dev = m.dev;
    auto oh = make_optimizer(oc, host.params());
    auto od = make_optimizer(oc, dev.params());
    double worst = 0.0, first_h = 0.0, first_d = 0.0, last_h = 0.0, last_d = 0.0;
    for (int s = 1; s <= 50; ++s) {
      // One step each; train_tiny(..., 1) draws the same batch at every call, so this is 50 steps on one
      // batch of the permutation task, the same for both.
      last_h = testing::train_tiny(*oh, host, 1, oc.lr, s == 1 ? &first_h : nullptr);
      last_d = testing::train_tiny(*od, dev, 1, oc.lr, s == 1 ? &first_d : nullptr);
      // Relative while the loss is above 0.1; below (memorised batch, loss -> 0) relative to 0.1.
      worst = std::max(worst, std::fabs(last_d - last_h) / std::max(last_h, 0.1));
    }
    std::printf(
        "%s: GPU vs host loss, worst relative difference over 50 steps %.3g (bound %.0e); loss %.4f -> "
        "%.4f\n",
        tr.name, worst, tr.bound, first_d, last_d);
    EXPECT_LE(worst, tr.bound) << tr.name << ": GPU loss left the host curve";
    // The host curves at these settings (CPU run): adamw 4.16 -> 0.92, muon 4.16 -> 3.35 (its AdamW side at
    // the default adam_lr trains the embedding slowly), scion, shampoo, soap 4.16 -> < 0.02.
    EXPECT_LT(last_h, 0.9 * first_h) << tr.name << ": the host run did not learn (" << first_h << " -> "
                                     << last_h << "), so the comparison says little";
  }
}

}  // namespace
}  // namespace quopt
