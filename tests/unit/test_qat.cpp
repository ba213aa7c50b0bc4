// QuEST QAT plumbing in the model: with quantization switched off (bits 0: Hadamard rotation only) the
// QAT model computes the same loss and gradients as the exact model, because the block Hadamard is
// orthogonal; with 4 bits the forward differs, and training still lowers the loss.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.hpp"
#include "model/olmo2.hpp"
#include "quant/qat.hpp"

namespace quopt {
namespace {

ModelConfig tiny() {
  ModelConfig cfg;
  cfg.d_model = 8;
  cfg.n_layers = 2;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 2;
  cfg.mlp_ratio = 2.0;
  cfg.vocab_size = 13;
  cfg.seq_len = 6;
  cfg.init_std = 0.4;
  return cfg;
}

void batch(Tensor& tokens, Tensor& targets, std::uint64_t seed) {
  Rng rng(seed, 1);
  for (std::int64_t i = 0; i < tokens.numel(); ++i) {
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(13));
    targets.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(13));
  }
}

const std::set<std::string> kAll = {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_down"};

TEST(Qat, RotationOnlyEqualsExactModel) {
  Olmo2 exact(tiny(), DType::F64), qat(tiny(), DType::F64);
  exact.init(3);
  qat.init(3);
  QuestConfig qc;
  qc.weight_bits = 0;
  qc.act_bits = 0;
  qc.hadamard_block = 8;
  qat.set_linear_quant(std::make_shared<QuestLinear>(qc, kAll));
  Tensor tokens = Tensor::empty({2, 6}, DType::I32), targets = Tensor::empty({2, 6}, DType::I32);
  batch(tokens, targets, 5);
  Activations a, b;
  const double la = exact.forward(tokens, targets, a).sum, lb = qat.forward(tokens, targets, b).sum;
  EXPECT_NEAR(la, lb, 1e-10 * std::fabs(la));
  exact.backward(a, 1.0 / 12);
  qat.backward(b, 1.0 / 12);
  for (const auto& p : exact.params().all()) {
    const Parameter& q = qat.params().get(p.name);
    for (std::int64_t i = 0; i < p.grad.numel(); ++i)
      EXPECT_NEAR(q.grad.data<double>()[i], p.grad.data<double>()[i], 1e-9) << p.name << "[" << i << "]";
  }
}

TEST(Qat, FourBitsChangesTheForwardAndStillTrains) {
  ModelConfig cfg = tiny();
  Olmo2 exact(cfg), qat(cfg);
  exact.init(3);
  qat.init(3);
  QuantConfig q;
  q.qat = "quest";
  q.hadamard_block = 8;
  q.layers = {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_gate", "mlp_down"};
  qat.set_linear_quant(make_qat(q));
  EXPECT_EQ(make_qat(QuantConfig{}), nullptr);  // qat = "none"
  Tensor tokens = Tensor::empty({4, 6}, DType::I32), targets = Tensor::empty({4, 6}, DType::I32);
  // A learnable rule: the target is a fixed function of the input token.
  Rng rng(9, 9);
  for (std::int64_t i = 0; i < tokens.numel(); ++i) {
    const auto t = static_cast<std::int32_t>(rng.below(13));
    tokens.data<std::int32_t>()[i] = t;
    targets.data<std::int32_t>()[i] = (5 * t + 3) % 13;
  }
  Activations a, b;
  const double le = exact.forward(tokens, targets, a).sum, l0 = qat.forward(tokens, targets, b).sum;
  EXPECT_GT(std::fabs(le - l0), 1e-6);  // 4-bit fake quantization changes the loss
  double last = l0;
  for (int step = 0; step < 150; ++step) {  // plain SGD on the QAT gradients
    qat.params().zero_grads();
    Activations act;
    last = qat.forward(tokens, targets, act).sum / 24;
    qat.backward(act, 1.0 / 24);
    for (auto& p : qat.params().all())
      for (std::int64_t i = 0; i < p.value.numel(); ++i)
        p.value.data<float>()[i] -= 0.5f * p.grad.data<float>()[i];
  }
  EXPECT_LT(last, 0.5 * l0 / 24) << "QAT training did not halve the loss";
}

}  // namespace
}  // namespace quopt
