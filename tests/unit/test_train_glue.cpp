// The pieces around the training loop, by their properties: the learning-rate schedules (warmup, floor,
// shape, for every kind and floor), the truncated-normal initialisation (bounds and spread), and which
// parameter roles AdamW decays.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "train/schedule.hpp"

namespace quopt {
namespace {

TEST(ScheduleShape, EveryKindWarmsUpLinearlyThenFallsToItsFloor) {
  const std::int64_t total = 200;
  for (ScheduleKind kind :
       {ScheduleKind::WSD, ScheduleKind::Cosine, ScheduleKind::Linear, ScheduleKind::Constant}) {
    for (double floor : {0.0, 0.1, 0.37}) {
      ScheduleConfig s;
      s.kind = kind;
      s.warmup_fraction = 0.1;  // 20 steps
      s.decay_fraction = 0.25;  // wsd: the last 50 steps
      s.min_lr_ratio = floor;
      const std::string what =
          ::testing::PrintToString(static_cast<int>(kind)) + " floor " + std::to_string(floor);
      for (std::int64_t t = 1; t <= 20; ++t) EXPECT_DOUBLE_EQ(lr_multiplier(s, t, total), t / 20.0) << what;
      double prev = 1.0;
      for (std::int64_t t = 21; t <= total; ++t) {
        const double m = lr_multiplier(s, t, total);
        EXPECT_LE(m, prev + 1e-15) << what << " step " << t;  // never rises after warmup
        EXPECT_GE(m, kind == ScheduleKind::Constant ? 1.0 : floor - 1e-15) << what << " step " << t;
        prev = m;
      }
      const double end = lr_multiplier(s, total, total);
      if (kind == ScheduleKind::Constant) {
        EXPECT_DOUBLE_EQ(end, 1.0);
        continue;
      }
      EXPECT_NEAR(end, floor, 1e-12) << what;
      // Halfway through the decay the multiplier is halfway between 1 and the floor (all three shapes are
      // symmetric about their midpoint: linear, cosine, and wsd's linear decay).
      const double mid = kind == ScheduleKind::WSD ? 175.0 : 110.0;
      EXPECT_NEAR(lr_multiplier(s, static_cast<std::int64_t>(mid), total), floor + 0.5 * (1.0 - floor), 1e-12)
          << what;
      if (kind == ScheduleKind::Cosine) {  // a quarter of the way: (1 + cos(pi/4)) / 2 of the span
        EXPECT_NEAR(lr_multiplier(s, 65, total),
                    floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi / 4)), 1e-12);
      }
      if (kind == ScheduleKind::WSD) {
        EXPECT_DOUBLE_EQ(lr_multiplier(s, 150, total), 1.0) << "stable until the decay";
      }
    }
  }
}

ModelConfig init_model(double trunc) {
  ModelConfig m;
  m.d_model = 64;
  m.n_layers = 2;
  m.n_heads = 4;
  m.n_kv_heads = 4;
  m.vocab_size = 256;
  m.init_std = 0.05;
  m.init_trunc = trunc;
  return m;
}

TEST(Init, WeightsAreNormalTruncatedAtTheConfiguredBoundAndGainsAreOne) {
  for (double a : {2.0, 3.0}) {
    Olmo2 model(init_model(a), DType::F32);
    model.init(11);
    double ss = 0.0, n = 0.0, amax = 0.0;
    for (const auto& p : model.params().all()) {
      for (std::int64_t i = 0; i < p.value.numel(); ++i) {
        const double w = p.value.item(i);
        if (p.role == ParamRole::Gain) {
          ASSERT_EQ(w, 1.0) << p.name;
          continue;
        }
        ss += w * w;
        n += 1.0;
        amax = std::max(amax, std::fabs(w));
      }
    }
    ASSERT_GT(n, 50000.0);
    EXPECT_LE(amax, a * 0.05 * (1 + 1e-6)) << "truncated at " << a << " sigma";
    EXPECT_GT(amax, 0.95 * a * 0.05) << "the tails up to the bound are reached";
    // Standard deviation of N(0, s^2) truncated at +-a s: s sqrt(1 - 2 a phi(a) / (2 Phi(a) - 1)).
    const double phi = std::exp(-0.5 * a * a) / std::sqrt(2.0 * std::numbers::pi);
    const double Z = std::erf(a / std::numbers::sqrt2);
    const double want = 0.05 * std::sqrt(1.0 - 2.0 * a * phi / Z);
    EXPECT_NEAR(std::sqrt(ss / n), want, 0.01 * want) << "truncated at " << a << " sigma";
  }
  // Deterministic in the seed; different tensors get different draws.
  Olmo2 a(init_model(3.0), DType::F32), b(init_model(3.0), DType::F32);
  a.init(4);
  b.init(4);
  EXPECT_EQ(a.params().get("block.00/attn_q").value.item(5), b.params().get("block.00/attn_q").value.item(5));
  EXPECT_NE(a.params().get("block.00/attn_q").value.item(5), a.params().get("block.00/attn_k").value.item(5));
}

TEST(AdamWDecay, OnlyTheListedRolesDecayAndTheHeadFollowsEmbedding) {
  ModelConfig m = init_model(3.0);
  m.tie_embeddings = false;  // a separate head parameter
  const std::vector<std::vector<std::string>> choices = {
      {}, {"hidden"}, {"embedding"}, {"gain"}, {"hidden", "embedding", "gain"}};
  for (const auto& roles : choices) {
    Olmo2 model(m, DType::F32);
    model.init(2);
    ParameterSet before;
    for (const auto& p : model.params().all())
      before.add(p.name, p.role, p.value.shape(), DType::F32).value.copy_from(p.value);
    OptimizerConfig oc;
    oc.weight_decay = 0.1;
    oc.decay_roles = roles;
    auto opt = make_optimizer(oc, model.params());
    model.params().zero_grads();  // zero gradients: AdamW's step is the decoupled decay alone
    opt->step(model.params(), 0.5);
    for (const auto& p : model.params().all()) {
      const std::string key = p.role == ParamRole::Head ? "embedding" : role_name(p.role);
      const bool decays = std::find(roles.begin(), roles.end(), key) != roles.end();
      const Tensor& w0 = before.get(p.name).value;
      for (std::int64_t i = 0; i < p.value.numel(); i += 97)
        ASSERT_NEAR(p.value.item(i), w0.item(i) * (decays ? 1.0 - 0.5 * 0.1 : 1.0), 1e-7)
            << p.name << " with decay_roles " << ::testing::PrintToString(roles);
    }
  }
}

}  // namespace
}  // namespace quopt
