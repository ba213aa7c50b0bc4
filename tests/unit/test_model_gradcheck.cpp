// Finite-difference check of the whole OLMo2 loss with respect to every parameter tensor (sampled
// entries), in fp64, for the model variants the config allows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.hpp"
#include "model/olmo2.hpp"
#include "support/gradcheck.hpp"

namespace quopt {
namespace {

struct Variant {
  const char* name;
  MlpKind mlp;
  bool tie, qk_norm;
  std::int64_t n_kv_heads;
  double z_loss;
};

class ModelGradcheck : public ::testing::TestWithParam<Variant> {};

TEST_P(ModelGradcheck, EveryParameterTensor) {
  const Variant v = GetParam();
  ModelConfig cfg;
  cfg.d_model = 8;
  cfg.n_layers = 2;
  cfg.n_heads = 2;
  cfg.n_kv_heads = v.n_kv_heads;
  cfg.mlp = v.mlp;
  cfg.mlp_ratio = 2.0;
  cfg.tie_embeddings = v.tie;
  cfg.qk_norm = v.qk_norm;
  cfg.rope_theta = 10000.0;
  cfg.vocab_size = 11;
  cfg.seq_len = 5;
  cfg.z_loss = v.z_loss;
  cfg.init_std = 0.5;  // larger than OLMo2's 0.02 so every path carries a gradient well above rounding
  Olmo2 model(cfg, DType::F64);
  model.init(42);
  // Perturb the gains away from 1 so their gradients are generic.
  Rng rng(3, 3);
  for (auto& p : model.params().all())
    if (p.role == ParamRole::Gain)
      for (std::int64_t i = 0; i < p.value.numel(); ++i) p.value.data<double>()[i] += 0.3 * rng.normal();

  const std::int64_t B = 2, T = 5;
  Tensor tokens = Tensor::empty({B, T}, DType::I32), targets = Tensor::empty({B, T}, DType::I32);
  for (std::int64_t i = 0; i < B * T; ++i) {
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(11));
    targets.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(11));
  }
  targets.data<std::int32_t>()[3] = -1;  // one ignored target

  Activations act;
  const LossSum ls = model.forward(tokens, targets, act);
  ASSERT_EQ(ls.count, B * T - 1);
  const double dscale = 1.0 / static_cast<double>(ls.count);
  model.params().zero_grads();
  model.backward(act, dscale);

  auto loss = [&]() {
    Activations a;
    return model.forward(tokens, targets, a).sum * dscale;
  };
  // The head's other two paths (model/olmo2.hpp) give the same gradients: a training forward
  // (head_dscale: the fused head's gradients computed in the forward) and keep_logits (the unfused
  // chain).
  std::vector<Tensor> grads;
  for (const auto& p : model.params().all()) grads.push_back(p.grad.clone());
  for (const bool train_forward : {true, false}) {
    SCOPED_TRACE(train_forward ? "training forward" : "keep_logits");
    model.params().zero_grads();
    Activations a;
    a.head_dscale = train_forward ? dscale : 0.0;
    a.keep_logits = !train_forward;
    EXPECT_EQ(model.forward(tokens, targets, a).sum, ls.sum);
    model.backward(a, dscale);
    std::size_t i = 0;
    for (const auto& p : model.params().all()) {
      const Tensor& want = grads[i++];
      for (std::int64_t j = 0; j < want.numel(); ++j)
        ASSERT_NEAR(p.grad.item(j), want.item(j), 1e-12 * std::max(1.0, std::fabs(want.item(j)))) << p.name;
    }
  }

  for (auto& p : model.params().all()) {
    const Tensor analytic = p.grad.clone();
    // Relative tolerance 1e-5 at h = 1e-5: central differences have O(h^2) ~ 1e-10 truncation error and
    // ~1e-11 rounding error relative to O(1) losses; the floor ignores entries whose gradient is ~0.
    testing::expect_gradient(std::string(v.name) + ":" + p.name, p.value, analytic, loss, 1e-5, 1e-5, 8,
                             1e-7);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, ModelGradcheck,
                         ::testing::Values(Variant{"paper", MlpKind::Relu2, true, true, 2, 0.0},
                                           Variant{"gqa_zloss", MlpKind::Relu2, true, true, 1, 1e-2},
                                           Variant{"swiglu_untied", MlpKind::SwiGLU, false, true, 2, 0.0},
                                           Variant{"no_qknorm", MlpKind::Relu2, false, false, 1, 0.0}),
                         [](const auto& info_) { return std::string(info_.param.name); });

}  // namespace
}  // namespace quopt
