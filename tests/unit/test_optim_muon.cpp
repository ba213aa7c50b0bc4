// Muon (optim/muon): a few steps on small matrices against an independent fp64 implementation of the
// reference formulas (KellerJordan/Muon), its invariants (routing of roles, gradient-scale invariance
// of the hidden update, bounded spectral norm of each step), its config keys and the shipped
// inputs/optimizers/muon.toml, and training the tiny OLMo2 model on a learnable synthetic task.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/config.hpp"
#include "io/run_config.hpp"
#include "model/olmo2.hpp"
#include "optim/muon.hpp"
#include "support/optim_unit.hpp"

namespace quopt {
namespace {

using testing::expect_docs_cite;
using testing::expect_every_key_set_at_default;
using testing::expect_rejected;
using testing::fill;
using testing::load_shipped_optimizer_toml;
using testing::Mat;
using testing::naive_ns;
using testing::random_values;
using testing::singular_values;
using testing::tiny_model;
using testing::train_tiny;
using testing::values;

// ---- independent fp64 reference ------------------------------------------------------------------

OptimizerConfig base_cfg(double lr, double wd, std::vector<std::string> roles) {
  OptimizerConfig c;
  c.name = "muon";
  c.lr = lr;
  c.weight_decay = wd;
  c.decay_roles = std::move(roles);
  return c;
}

// A parameter set with a tall and a wide hidden matrix, an embedding and a gain.
struct Toy {
  ParameterSet ps;
  Toy() {
    ps.add("embed/weight", ParamRole::Embedding, {5, 3}, DType::F32);
    ps.add("block.00/attn_q", ParamRole::Hidden, {4, 3}, DType::F32);
    ps.add("block.00/attn_norm", ParamRole::Gain, {3}, DType::F32);
    ps.add("block.00/mlp_down", ParamRole::Hidden, {2, 3}, DType::F32);
  }
};

TEST(Muon, ThreeStepsMatchIndependentFp64Reference) {
  for (bool nesterov : {true, false}) {
    Toy toy;
    Rng rng(3, 4);
    std::vector<Mat> w, m1, m2, buf;
    for (auto& p : toy.ps.all()) {
      w.push_back(random_values(p.value.numel(), rng, 0.5));
      fill(p.value, w.back());
      m1.emplace_back(w.back().size(), 0.0);
      m2.emplace_back(w.back().size(), 0.0);
      buf.emplace_back(w.back().size(), 0.0);
    }
    MuonOptions opt;
    opt.nesterov = nesterov;
    opt.adam_lr = 0.01;
    opt.adam_weight_decay = 0.5;
    // Peak lr 0.02 (the schedule's reference), steps at 0.02, 0.01, 0.005: the side AdamW must follow.
    const OptimizerConfig cfg = base_cfg(0.02, 0.1, {"hidden", "gain"});
    Muon muon(cfg, opt, toy.ps);
    const double lrs[3] = {0.02, 0.01, 0.005};
    for (int t = 1; t <= 3; ++t) {
      const double lr = lrs[t - 1];
      std::size_t i = 0;
      for (auto& p : toy.ps.all()) {
        const Mat g = random_values(p.value.numel(), rng);
        fill(p.grad, g);
        Mat& x = w[i];
        if (p.role == ParamRole::Hidden) {
          const int r = static_cast<int>(p.value.dim(0)), c = static_cast<int>(p.value.dim(1));
          Mat u(g.size());
          for (std::size_t k = 0; k < g.size(); ++k) {
            buf[i][k] = 0.95 * buf[i][k] + g[k];
            u[k] = nesterov ? g[k] + 0.95 * buf[i][k] : buf[i][k];
          }
          const Mat o = naive_ns(u, r, c);
          const double sc = std::sqrt(std::max(1.0, double(r) / c));
          for (std::size_t k = 0; k < g.size(); ++k) x[k] = x[k] * (1.0 - lr * 0.1) - lr * sc * o[k];
        } else {
          // PyTorch AdamW with lr = adam_lr * lr / peak lr; decay only for roles in decay_roles.
          const double alr = 0.01 * lr / 0.02, wd = p.role == ParamRole::Gain ? 0.5 : 0.0;
          for (std::size_t k = 0; k < g.size(); ++k) {
            x[k] *= 1.0 - alr * wd;
            m1[i][k] = 0.9 * m1[i][k] + 0.1 * g[k];
            m2[i][k] = 0.95 * m2[i][k] + 0.05 * g[k] * g[k];
            const double mh = m1[i][k] / (1.0 - std::pow(0.9, t)), vh = m2[i][k] / (1.0 - std::pow(0.95, t));
            x[k] -= alr * mh / (std::sqrt(vh) + 1e-10);
          }
        }
        ++i;
      }
      muon.step(toy.ps, lr);
      i = 0;
      for (auto& p : toy.ps.all()) {
        const Mat got = values(p.value);
        for (std::size_t k = 0; k < got.size(); ++k)
          EXPECT_NEAR(got[k], w[i][k], 2e-6 * (1.0 + std::fabs(w[i][k])))
              << p.name << "[" << k << "] step " << t << " nesterov " << nesterov;
        ++i;
      }
    }
    EXPECT_EQ(muon.steps_taken(), 3);
  }
}

TEST(Muon, RoutesRolesAndNamesState) {
  Toy toy;
  Muon muon(base_cfg(0.02, 0.0, {"hidden"}), MuonOptions{}, toy.ps);
  ASSERT_EQ(muon.plan().size(), 2u);  // the two hidden matrices only
  EXPECT_EQ(muon.plan().item(0).name, "block.00/attn_q");
  EXPECT_EQ(muon.plan().item(1).name, "block.00/mlp_down");
  EXPECT_GT(muon.plan().item(0).cost, muon.plan().item(1).cost);  // 4x3 costs more than 2x3
  std::vector<std::string> names;
  for (const auto& s : muon.state()) names.push_back(s.name);
  const std::vector<std::string> want = {"block.00/attn_q/momentum_buffer",
                                         "block.00/mlp_down/momentum_buffer",
                                         "embed/weight/exp_avg",
                                         "embed/weight/exp_avg_sq",
                                         "block.00/attn_norm/exp_avg",
                                         "block.00/attn_norm/exp_avg_sq"};
  EXPECT_EQ(names, want);
  const OptimizerReport r = muon.report();
  EXPECT_EQ(r.balance, 1.0);
  EXPECT_EQ(r.state_bytes, 4 * (12 + 6 + 2 * 15 + 2 * 3));
  // A parameter set that changed since construction is an error.
  ParameterSet other;
  other.add("other/x", ParamRole::Gain, {2}, DType::F32);
  EXPECT_THROW(muon.step(other, 0.02), Error);
}

TEST(Muon, HiddenUpdateIsScaleInvariantAndSpectrallyBounded) {
  // The orthogonalised update ignores the gradient's scale; each step moves W by lr * O with
  // ||O||_2 <= 1.135 * sqrt(max(1, rows/cols)) (the NS5 band's upper end; see test_optim_newton_schulz).
  for (double gscale : {1e-3, 1.0, 1e3}) {
    ParameterSet ps;
    auto& p = ps.add("block.00/mlp_up", ParamRole::Hidden, {12, 6}, DType::F32);
    Rng rng(9, 9);
    fill(p.value, random_values(72, rng, 0.1));
    Muon muon(base_cfg(0.05, 0.0, {}), MuonOptions{}, ps);
    Mat before = values(p.value), first_step;
    for (int t = 0; t < 5; ++t) {
      Mat g = random_values(72, rng);
      for (auto& v : g) v *= gscale;
      fill(p.grad, g);
      muon.step(ps, 0.05);
      const Mat after = values(p.value);
      Mat d(after.size());
      for (std::size_t k = 0; k < d.size(); ++k) d[k] = (before[k] - after[k]) / 0.05;
      EXPECT_LE(singular_values(d, 12, 6)[0], 1.135 * std::sqrt(2.0) + 1e-4);
      EXPECT_GE(singular_values(d, 12, 6)[0], 0.68 * std::sqrt(2.0) - 1e-4);
      if (t == 0) first_step = d;
      before = after;
    }
    // Same random stream for every scale: the first update is the same up to f32 rounding.
    static Mat reference;
    if (reference.empty()) reference = first_step;
    for (std::size_t k = 0; k < reference.size(); ++k) EXPECT_NEAR(first_step[k], reference[k], 1e-4);
  }
}

// ---- config keys ------------------------------------------------------------------------------------

Schema muon_schema() {
  Schema s;
  add_muon_keys(s);
  return s;
}

TEST(Muon, ConfigKeysDefaultsAndErrors) {
  static const Schema s = muon_schema();
  const MuonOptions d = muon_options(Config::defaults(s));
  const MuonOptions want;
  EXPECT_EQ(d.momentum, want.momentum);
  EXPECT_EQ(d.nesterov, want.nesterov);
  EXPECT_EQ(d.ns_steps, want.ns_steps);
  EXPECT_EQ(d.adam_lr, want.adam_lr);
  EXPECT_EQ(d.adam_beta1, want.adam_beta1);
  EXPECT_EQ(d.adam_beta2, want.adam_beta2);
  EXPECT_EQ(d.adam_eps, want.adam_eps);
  EXPECT_EQ(d.adam_weight_decay, want.adam_weight_decay);
  // The reference's values, independently of the struct.
  EXPECT_EQ(want.momentum, 0.95);
  EXPECT_EQ(want.ns_steps, 5);
  EXPECT_TRUE(want.nesterov);
  const Config c = Config::from_toml_string(
      s, "[optimizer.muon]\nmomentum = 0.9\nnesterov = false\nns_steps = 6\nadam_lr = 0.01\n", "t.toml");
  const MuonOptions o = muon_options(c);
  EXPECT_EQ(o.momentum, 0.9);
  EXPECT_FALSE(o.nesterov);
  EXPECT_EQ(o.ns_steps, 6);
  EXPECT_EQ(o.adam_lr, 0.01);
  expect_rejected(s, "muon",
                  {"momentum = 1.0", "ns_steps = 0", "adam_lr = 0.0", "adam_beta2 = 1.5", "momentun = 0.9"});
  expect_docs_cite(s, "KellerJordan/Muon");
}

TEST(Muon, ShippedTomlHasEveryKeyAtItsDefault) {
  const Config c = load_shipped_optimizer_toml("muon");
  EXPECT_EQ(c.get_float("optimizer.lr"), 0.02);  // KellerJordan/Muon Muon(lr=0.02)
  expect_every_key_set_at_default(c, "muon");
}

// ---- training ---------------------------------------------------------------------------------------

TEST(Muon, TrainsTinyModelOnPermutationTask) {
  Olmo2 model(tiny_model());
  model.init(5);
  MuonOptions opt;
  opt.adam_lr = 0.01;  // test choice: the side AdamW trains the embedding fast enough for 150 steps
  Muon muon(base_cfg(0.02, 0.0, {"hidden"}), opt, model.params());
  const double loss = train_tiny(muon, model, 100, 0.02);
  std::printf("muon: tiny model loss after 100 steps %.4f (ln 64 = %.4f)\n", loss, std::log(64.0));
  EXPECT_LT(loss, 0.1);
}

}  // namespace
}  // namespace quopt
