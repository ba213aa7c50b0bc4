// Splitting the model into pipeline stages changes nothing: the loss is bitwise the same, and every
// gradient equals the whole model's (the tied embedding's two copies summed).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "model/olmo2.hpp"

namespace quopt {
namespace {

TEST(ModelStages, TwoStagesMatchWholeModel) {
  ModelConfig cfg;
  cfg.d_model = 16;
  cfg.n_layers = 3;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 2;
  cfg.vocab_size = 23;
  cfg.seq_len = 6;
  cfg.z_loss = 1e-4;
  const std::int64_t B = 2, T = 6;
  Tensor tokens = Tensor::empty({B, T}, DType::I32), targets = Tensor::empty({B, T}, DType::I32);
  Rng rng(5, 5);
  for (std::int64_t i = 0; i < B * T; ++i) {
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(23));
    targets.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(23));
  }
  const double dscale = 1.0 / (B * T);

  Olmo2 whole(cfg);
  whole.init(9);
  Activations a;
  const LossSum lw = whole.forward(tokens, targets, a);
  whole.backward(a, dscale);

  Olmo2 s0(cfg, DType::F32, StageSpec{0, 1, true, false});
  Olmo2 s1(cfg, DType::F32, StageSpec{1, 3, false, true});
  s0.init(9);
  s1.init(9);
  Activations a0, a1;
  LossSum ls;
  const Tensor h = s0.forward_stage(tokens, Tensor(), B, T, a0, nullptr);
  s1.forward_stage(h, targets, B, T, a1, &ls);
  EXPECT_EQ(ls.sum, lw.sum);  // bitwise
  std::vector<std::int64_t> done;
  const Tensor dh = s1.backward_stage(a1, Tensor(), dscale, [&](std::int64_t i) { done.push_back(i); });
  EXPECT_EQ(done, (std::vector<std::int64_t>{2, 1}));
  s0.backward_stage(a0, dh, dscale);

  EXPECT_EQ(s0.params().all().size() + s1.params().all().size(), whole.params().all().size() + 1);
  for (const auto& p : whole.params().all()) {
    Tensor g = Tensor::zeros(p.grad.shape());
    for (Olmo2* s : {&s0, &s1})
      if (s->params().contains(p.name)) {
        const Parameter& q = s->params().get(p.name);
        EXPECT_EQ(q.value.shape(), p.value.shape());
        for (std::int64_t i = 0; i < g.numel(); ++i) {
          EXPECT_EQ(q.value.data<float>()[i], p.value.data<float>()[i]) << p.name;  // same init
          g.data<float>()[i] += q.grad.data<float>()[i];
        }
      }
    for (std::int64_t i = 0; i < g.numel(); ++i)
      EXPECT_NEAR(g.data<float>()[i], p.grad.data<float>()[i],
                  1e-6f * (1.0f + std::fabs(p.grad.data<float>()[i])))
          << p.name << "[" << i << "]";
  }
}

}  // namespace
}  // namespace quopt

namespace quopt {
namespace {

// Composing the ABC module chain reproduces the forward's logits exactly, and every module's value is
// the tensor the forward computes at that point: Attn(x), x + RMSNorm(Attn(x)), MLP(h), the block output.
TEST(ModelModules, ChainComposesToForward) {
  ModelConfig cfg;
  cfg.d_model = 16;
  cfg.n_layers = 2;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 1;
  cfg.vocab_size = 19;
  cfg.seq_len = 5;
  Olmo2 model(cfg);
  model.init(4);
  const std::int64_t B = 2, T = 5, N = B * T;
  Tensor tokens = Tensor::empty({B, T}, DType::I32), targets = Tensor::zeros({B, T}, DType::I32);
  for (std::int64_t i = 0; i < B * T; ++i)
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>((7 * i) % 19);
  Activations act;
  act.keep_logits = true;
  model.forward(tokens, targets, act);
  ASSERT_EQ(model.module_count(), 4 * 2 + 3);
  const std::vector<std::string> names = {
      "embed",         "block.00.attn",      "block.00.attn_norm", "block.00.mlp",      "block.00.mlp_norm",
      "block.01.attn", "block.01.attn_norm", "block.01.mlp",       "block.01.mlp_norm", "final_norm",
      "head"};
  for (std::int64_t m = 0; m < model.module_count(); ++m) EXPECT_EQ(model.module_name(m), names[m]);
  auto expect_same = [](const Tensor& a, const Tensor& b, const std::string& what) {
    ASSERT_EQ(a.numel(), b.numel()) << what;
    for (std::int64_t i = 0; i < a.numel(); ++i)
      ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << what << "[" << i << "]";
  };
  Tensor h = tokens;
  for (std::int64_t m = 0; m < model.module_count(); ++m) {
    h = model.module_forward(m, h, B, T);
    const Tensor v = model.module_value(m, h);
    if (m == 0 || m >= model.module_count() - 2) {
      EXPECT_EQ(v.raw(), h.raw()) << names[m];  // the whole output
      continue;
    }
    const BlockActivations& c = act.blocks[static_cast<std::size_t>((m - 1) / 4)];
    switch ((m - 1) % 4) {
      case 0:  // attn: [x ; Attn(x)]
        ASSERT_EQ(h.shape(), (Shape{2, N, 16})) << names[m];
        expect_same(h.slice(0, 1), c.x, names[m] + " residual");
        expect_same(v, c.o, names[m]);
        break;
      case 1:
        expect_same(v, c.h, names[m]);
        break;
      case 2:  // mlp: [h ; MLP(h)]
        expect_same(h.slice(0, 1), c.h, names[m] + " residual");
        expect_same(v, c.d, names[m]);
        break;
      default: {
        const bool last = (m - 1) / 4 == 1;
        expect_same(v, last ? act.y : act.blocks[1].x, names[m]);
      }
    }
  }
  expect_same(h, act.logits, "logits");
  EXPECT_THROW(model.module_forward(2, model.module_forward(0, tokens, B, T), B, T),
               Error);  // needs [2, N, C]
}

}  // namespace
}  // namespace quopt
