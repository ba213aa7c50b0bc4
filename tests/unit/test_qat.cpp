// QuEST QAT plumbing in the model: with quantization switched off (bits 0: Hadamard rotation only) the
// QAT model computes the same loss and gradients as the exact model, because the block Hadamard is
// orthogonal, and those gradients match finite differences; with 4 bits the forward differs, and
// training still lowers the loss. The output projection (quant.qat_head) goes through the same
// quantized linear: its forward is quest_linear_forward and its backward the trust-masked
// straight-through estimator quest_linear_backward (tested densely in test_quant_quest).
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.hpp"
#include "kernels/ops.hpp"
#include "model/olmo2.hpp"
#include "quant/qat.hpp"
#include "support/gradcheck.hpp"

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

class QatRotationOnly : public ::testing::TestWithParam<bool> {};  // param: the head quantized too

TEST_P(QatRotationOnly, EqualsExactModel) {
  Olmo2 exact(tiny(), DType::F64), qat(tiny(), DType::F64);
  exact.init(3);
  qat.init(3);
  QuestConfig qc;
  qc.weight_bits = 0;
  qc.act_bits = 0;
  qc.hadamard_block = 8;
  std::set<std::string> layers = kAll;
  if (GetParam()) layers.insert("head");
  qat.set_linear_quant(std::make_shared<QuestLinear>(qc, layers));
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
  // The QAT model's own gradients against central differences of its loss (the tied embedding gets
  // both the lookup's and, with the head quantized, the QuEST head's gradient).
  for (const char* name : {"embed/weight", "final_norm/weight", "block.01/mlp_down"}) {
    Parameter& p = qat.params().get(name);
    testing::expect_gradient(
        std::string(name) + (GetParam() ? " (QuEST head)" : ""), p.value, p.grad,
        [&] {
          Activations act;
          return qat.forward(tokens, targets, act).sum / 12;
        },
        1e-5, 1e-6, 24);  // 1e-5: the rounding of a central difference of an O(1) loss at h = 1e-6
  }
}
INSTANTIATE_TEST_SUITE_P(Head, QatRotationOnly, ::testing::Bool());

// A 4-bit QuEST head on an untied model: logits = quest_linear_forward(z, W_head), the head's gradient and
// the gradient it sends back into the final norm are quest_linear_backward's (straight-through, trust
// mask), and the blocks stay exact.
TEST(Qat, FourBitHeadIsTheQuestLinear) {
  ModelConfig cfg = tiny();
  cfg.tie_embeddings = false;
  Olmo2 model(cfg, DType::F64);
  model.init(5);
  QuantConfig q;
  q.qat = "quest";
  q.hadamard_block = 8;
  q.layers = {};
  q.qat_head = true;
  auto quest = make_qat(q);
  ASSERT_TRUE(quest->applies("head"));
  EXPECT_FALSE(quest->applies("attn_q"));
  q.qat_head = false;
  q.layers = {"attn_q"};
  EXPECT_FALSE(make_qat(q)->applies("head"));  // the paper's setting: blocks only
  model.set_linear_quant(quest);
  const QuestConfig& qc = dynamic_cast<const QuestLinear&>(*quest).config();

  Tensor tokens = Tensor::empty({2, 6}, DType::I32), targets = Tensor::empty({2, 6}, DType::I32);
  batch(tokens, targets, 7);
  Activations act;
  model.forward(tokens, targets, act);
  const Parameter& head = model.params().get("head/weight");
  Tensor logits = Tensor::empty(act.logits.shape(), DType::F64);
  QuestLinearCache cache;
  quest_linear_forward(act.z, head.value, qc, logits, cache);
  for (std::int64_t i = 0; i < logits.numel(); ++i) ASSERT_EQ(act.logits.item(i), logits.item(i)) << i;
  Tensor exact = Tensor::empty(act.logits.shape(), DType::F64);
  kernels::matmul(act.z, false, head.value, true, exact);
  double diff = 0.0;
  for (std::int64_t i = 0; i < exact.numel(); ++i)
    diff = std::max(diff, std::fabs(exact.item(i) - logits.item(i)));
  EXPECT_GT(diff, 1e-3) << "4-bit head left the logits unchanged";

  // Expected gradients from the head's STE backward, before model.backward overwrites the logits.
  const double dscale = 1.0 / 12;
  Tensor dlogits = Tensor::empty(act.logits.shape(), DType::F64);
  kernels::cross_entropy_backward(act.logits, act.targets.reshape({12}), act.lse, cfg.z_loss, dscale,
                                  dlogits);
  Tensor dz = Tensor::empty(act.z.shape(), DType::F64), dw = Tensor::zeros(head.value.shape(), DType::F64);
  quest_linear_backward(dlogits, cache, qc, dz, dw);
  Tensor dgain = Tensor::zeros({cfg.d_model}, DType::F64), dy = Tensor::empty(act.y.shape(), DType::F64);
  kernels::rmsnorm_backward(dz, act.y, model.params().get("final_norm/weight").value, act.z_rstd, dy, dgain);
  model.params().zero_grads();
  model.backward(act, dscale);
  for (std::int64_t i = 0; i < dw.numel(); ++i)
    EXPECT_NEAR(head.grad.item(i), dw.item(i), 1e-14) << "head/weight[" << i << "]";
  const Parameter& gain = model.params().get("final_norm/weight");
  for (std::int64_t i = 0; i < dgain.numel(); ++i)
    EXPECT_NEAR(gain.grad.item(i), dgain.item(i), 1e-14) << "final_norm/weight[" << i << "]";
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
