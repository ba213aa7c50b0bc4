// Scion (optim/scion): steps on small matrices against an independent fp64 implementation of the
// reference formulas (LIONS-EPFL/scion scion.py) for every LMO and both update forms, the
// norm-constraint invariants of the constrained update, role routing (tied/untied embeddings), the
// config keys and the shipped inputs/optimizers/scion.toml, and training the tiny OLMo2 model.
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
#include "optim/scion.hpp"
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

// The reference's LMOs for a [rows, cols] matrix stored as PyTorch stores a Linear weight [d_out, d_in].
Mat lmo_spectral(const Mat& g, int r, int c) {
  Mat o = naive_ns(g, r, c);
  for (auto& v : o) v *= std::sqrt(double(r) / c);
  return o;
}
Mat lmo_sign(const Mat& g, double div) {
  Mat o(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) o[i] = (g[i] > 0 ? 1.0 : g[i] < 0 ? -1.0 : 0.0) / div;
  return o;
}
// ColNorm(normalized=True): column j / (||g[:, j]|| / sqrt(rows) * cols + 1e-8).
Mat lmo_colnorm_out(const Mat& g, int r, int c) {
  Mat o(g.size());
  for (int j = 0; j < c; ++j) {
    double s = 0.0;
    for (int i = 0; i < r; ++i) s += g[i * c + j] * g[i * c + j];
    const double den = std::sqrt(s) / std::sqrt(double(r)) * c + 1e-8;
    for (int i = 0; i < r; ++i) o[i * c + j] = g[i * c + j] / den;
  }
  return o;
}
// ColNorm(normalized=False, transpose=True) on an embedding [vocab, d]: row v / (||g[v, :]|| / sqrt(d) +
// 1e-8).
Mat lmo_colnorm_in(const Mat& g, int r, int c) {
  Mat o(g.size());
  for (int i = 0; i < r; ++i) {
    double s = 0.0;
    for (int j = 0; j < c; ++j) s += g[i * c + j] * g[i * c + j];
    const double den = std::sqrt(s) / std::sqrt(double(c)) + 1e-8;
    for (int j = 0; j < c; ++j) o[i * c + j] = g[i * c + j] / den;
  }
  return o;
}
Mat lmo_biasrms(const Mat& g) {
  double s = 0.0;
  for (double v : g) s += v * v;
  const double den = std::sqrt(s / double(g.size())) + 1e-8;
  Mat o(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) o[i] = g[i] / den;
  return o;
}

OptimizerConfig base_cfg(double lr) {
  OptimizerConfig c;
  c.name = "scion";
  c.lr = lr;
  c.weight_decay = 0.0;
  return c;
}

struct Variant {
  bool tied, unconstrained;
  ScionLmo out_lmo, in_lmo;
  double momentum;
};

TEST(Scion, ThreeStepsMatchIndependentFp64Reference) {
  for (const Variant& var : {Variant{true, false, ScionLmo::Sign, ScionLmo::Sign, 0.1},
                             Variant{true, true, ScionLmo::ColNorm, ScionLmo::Sign, 0.5},
                             Variant{false, false, ScionLmo::Sign, ScionLmo::ColNorm, 0.1},
                             Variant{false, true, ScionLmo::ColNorm, ScionLmo::Sign, 1.0}}) {
    ParameterSet ps;
    ps.add("embed/weight", ParamRole::Embedding, {5, 3}, DType::F32);
    ps.add("block.00/attn_q", ParamRole::Hidden, {4, 3}, DType::F32);
    ps.add("block.00/attn_norm", ParamRole::Gain, {3}, DType::F32);
    ps.add("block.00/mlp_down", ParamRole::Hidden, {2, 3}, DType::F32);
    if (!var.tied) ps.add("head/weight", ParamRole::Head, {5, 3}, DType::F32);
    ScionOptions opt;
    opt.momentum = var.momentum;
    opt.unconstrained = var.unconstrained;
    opt.output_lmo = var.out_lmo;
    opt.input_lmo = var.in_lmo;
    opt.scale_hidden = 3.0;
    opt.scale_output = 10.0;
    opt.scale_input = 1.5;
    opt.scale_gain = 2.0;
    Rng rng(21, 4);
    std::vector<Mat> w, d;
    for (auto& p : ps.all()) {
      w.push_back(random_values(p.value.numel(), rng, 0.25));
      fill(p.value, w.back());
      d.emplace_back(w.back().size(), 0.0);
    }
    Scion scion(base_cfg(0.05), opt, ps, var.tied);
    const double lrs[3] = {0.05, 0.02, 0.01};
    for (int t = 0; t < 3; ++t) {
      const double lr = lrs[t];
      std::size_t i = 0;
      for (auto& p : ps.all()) {
        const Mat g = random_values(p.value.numel(), rng);
        fill(p.grad, g);
        for (std::size_t k = 0; k < g.size(); ++k)
          d[i][k] = (1.0 - var.momentum) * d[i][k] + var.momentum * g[k];
        const int r = static_cast<int>(p.value.dim(0)),
                  c = p.value.ndim() == 2 ? static_cast<int>(p.value.dim(1)) : 1;
        Mat l;
        double scale = 0.0;
        const bool output = p.role == ParamRole::Head || (p.role == ParamRole::Embedding && var.tied);
        if (p.role == ParamRole::Hidden) {
          l = lmo_spectral(d[i], r, c);
          scale = 3.0;
        } else if (p.role == ParamRole::Gain) {
          l = lmo_biasrms(d[i]);
          scale = 2.0;
        } else if (output) {
          l = var.out_lmo == ScionLmo::Sign ? lmo_sign(d[i], c) : lmo_colnorm_out(d[i], r, c);
          scale = 10.0;
        } else {
          l = var.in_lmo == ScionLmo::Sign ? lmo_sign(d[i], 1.0) : lmo_colnorm_in(d[i], r, c);
          scale = 1.5;
        }
        for (std::size_t k = 0; k < g.size(); ++k)
          w[i][k] = (var.unconstrained ? 1.0 : 1.0 - lr) * w[i][k] - lr * scale * l[k];
        ++i;
      }
      scion.step(ps, lr);
      i = 0;
      for (auto& p : ps.all()) {
        const Mat got = values(p.value);
        for (std::size_t k = 0; k < got.size(); ++k)
          EXPECT_NEAR(got[k], w[i][k], 2e-6 * (1.0 + std::fabs(w[i][k])))
              << p.name << "[" << k << "] step " << t << " tied " << var.tied << " lmo "
              << scion_lmo_name(var.out_lmo);
        ++i;
      }
    }
    EXPECT_EQ(scion.state().size(), var.momentum == 1.0 ? 0u : ps.all().size());
  }
}

TEST(Scion, RoutesRolesToLmosAndRadii) {
  ParameterSet ps;
  ps.add("embed/weight", ParamRole::Embedding, {8, 4}, DType::F32);
  ps.add("block.00/attn_q", ParamRole::Hidden, {4, 4}, DType::F32);
  ps.add("block.00/attn_norm", ParamRole::Gain, {4}, DType::F32);
  ps.add("head/weight", ParamRole::Head, {8, 4}, DType::F32);
  const ScionOptions o;
  Scion untied(base_cfg(1e-3), o, ps, false);
  EXPECT_EQ(untied.lmo_of(0), ScionLmo::Sign);
  EXPECT_EQ(untied.scale_of(0), 1.0);  // input embedding: shallow-nanogpt wte scale 1
  EXPECT_EQ(untied.lmo_of(1), ScionLmo::Spectral);
  EXPECT_EQ(untied.scale_of(1), 50.0);  // modded-nanogpt scale 50
  EXPECT_EQ(untied.lmo_of(2), ScionLmo::BiasRMS);
  EXPECT_EQ(untied.scale_of(2), 50.0);
  EXPECT_EQ(untied.lmo_of(3), ScionLmo::Sign);
  EXPECT_EQ(untied.scale_of(3), 3000.0);  // modded-nanogpt last_scale 3000
  ASSERT_EQ(untied.plan().size(), 1u);
  EXPECT_EQ(untied.plan().item(0).name, "block.00/attn_q");
  // Tied: the embedding is the output head.
  ParameterSet tied_ps;
  tied_ps.add("embed/weight", ParamRole::Embedding, {8, 4}, DType::F32);
  Scion tied(base_cfg(1e-3), o, tied_ps, true);
  EXPECT_EQ(tied.scale_of(0), 3000.0);
  // make_scion infers tying from the absence of a head parameter without a config.
  OptimizerContext ctx;
  auto made = make_scion(base_cfg(1e-3), tied_ps, ctx);
  EXPECT_EQ(dynamic_cast<Scion&>(*made).scale_of(0), 3000.0);
  auto made2 = make_scion(base_cfg(1e-3), ps, ctx);
  EXPECT_EQ(dynamic_cast<Scion&>(*made2).scale_of(0), 1.0);
  // Bad option values are rejected with the key's name.
  ScionOptions bad;
  bad.momentum = 0.0;
  try {
    Scion s(base_cfg(1e-3), bad, ps, false);
    ADD_FAILURE() << "momentum 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.scion.momentum"), std::string::npos);
  }
}

TEST(Scion, ConstrainedUpdateKeepsEveryNormInsideItsRadius) {
  // Starting from small weights, with random gradients and lr 0.1 for 200 steps, the constrained
  // update W = (1 - lr) W - lr s lmo(d) is a convex combination of W and a point of the ball of
  // radius s (in the LMO's norm), so the iterates never leave it:
  //   Spectral (square, sqrt(d_out/d_in) = 1): ||W||_2 <= s * 1.135 (NS5 singular values <= 1.135, see
  //     test_optim_newton_schulz), Sign (output): max |W_ij| <= s / d_in, BiasRMS: RMS(w) <= s,
  //   ColNorm (output): d_in * RMS of each column <= s.
  // With a fixed gradient, they converge to the boundary (||W||_2 >= 0.68 s), so the bound is not vacuous.
  const double sh = 2.0, so = 5.0, sg = 0.5;
  for (bool fixed : {false, true}) {
    for (ScionLmo out : {ScionLmo::Sign, ScionLmo::ColNorm}) {
      ParameterSet ps;
      auto& e = ps.add("embed/weight", ParamRole::Embedding, {10, 6}, DType::F32);
      auto& h = ps.add("block.00/mlp_up", ParamRole::Hidden, {6, 6}, DType::F32);
      auto& gn = ps.add("block.00/mlp_norm", ParamRole::Gain, {6}, DType::F32);
      ScionOptions opt;
      opt.scale_hidden = sh;
      opt.scale_output = so;
      opt.scale_gain = sg;
      opt.output_lmo = out;
      opt.momentum = 0.5;
      Rng rng(5, 6);
      for (Parameter* p : {&e, &h, &gn}) fill(p->value, random_values(p->value.numel(), rng, 0.01));
      Scion scion(base_cfg(0.1), opt, ps, true);
      Mat fixed_g[3];
      for (int k = 0; k < 3; ++k)
        fixed_g[k] = random_values(ps.all()[static_cast<std::size_t>(k)].value.numel(), rng);
      double max_spec = 0.0;
      for (int t = 0; t < 200; ++t) {
        int k = 0;
        for (auto& p : ps.all()) {
          fill(p.grad, fixed ? fixed_g[k] : random_values(p.value.numel(), rng));
          ++k;
        }
        scion.step(ps, 0.1);
        const double spec = singular_values(values(h.value), 6, 6)[0];
        max_spec = std::max(max_spec, spec);
        ASSERT_LE(spec, sh * 1.135 + 1e-5) << "step " << t;
        const Mat ev = values(e.value);
        if (out == ScionLmo::Sign) {
          for (double v : ev) ASSERT_LE(std::fabs(v), so / 6.0 + 1e-6);
        } else {
          for (int j = 0; j < 6; ++j) {
            double s = 0.0;
            for (int i = 0; i < 10; ++i) s += ev[i * 6 + j] * ev[i * 6 + j];
            ASSERT_LE(std::sqrt(s / 10.0) * 6.0, so * (1.0 + 1e-5));
          }
        }
        const Mat gv = values(gn.value);
        double s = 0.0;
        for (double v : gv) s += v * v;
        ASSERT_LE(std::sqrt(s / 6.0), sg * (1.0 + 1e-5));
      }
      if (fixed) {
        EXPECT_GE(max_spec, 0.68 * sh);
      }
    }
  }
}

TEST(Scion, UnconstrainedUpdateLeavesTheBall) {
  // The unconstrained form has no such bound: with a fixed gradient the weights grow linearly.
  ParameterSet ps;
  auto& h = ps.add("block.00/mlp_up", ParamRole::Hidden, {6, 6}, DType::F32);
  ScionOptions opt;
  opt.scale_hidden = 1.0;
  opt.unconstrained = true;
  Rng rng(8, 8);
  fill(h.value, random_values(36, rng, 0.01));
  const Mat g = random_values(36, rng);
  Scion scion(base_cfg(0.1), opt, ps, true);
  for (int t = 0; t < 100; ++t) {
    fill(h.grad, g);
    scion.step(ps, 0.1);
  }
  EXPECT_GT(singular_values(values(h.value), 6, 6)[0], 3.0);
}

// ---- config keys ------------------------------------------------------------------------------------

TEST(Scion, ConfigKeysDefaultsAndErrors) {
  static const Schema s = [] {
    Schema x;
    add_scion_keys(x);
    return x;
  }();
  const ScionOptions d = scion_options(Config::defaults(s)), want;
  EXPECT_EQ(d.momentum, want.momentum);
  EXPECT_EQ(d.unconstrained, want.unconstrained);
  EXPECT_EQ(d.ns_steps, want.ns_steps);
  EXPECT_EQ(d.scale_hidden, want.scale_hidden);
  EXPECT_EQ(d.output_lmo, want.output_lmo);
  EXPECT_EQ(d.scale_output, want.scale_output);
  EXPECT_EQ(d.input_lmo, want.input_lmo);
  EXPECT_EQ(d.scale_input, want.scale_input);
  EXPECT_EQ(d.scale_gain, want.scale_gain);
  const Config c = Config::from_toml_string(s,
                                            "[optimizer.scion]\nunconstrained = true\noutput_lmo = "
                                            "\"colnorm\"\nscale_hidden = 3.0\nmomentum = 1.0\n",
                                            "t.toml");
  const ScionOptions o = scion_options(c);
  EXPECT_TRUE(o.unconstrained);
  EXPECT_EQ(o.output_lmo, ScionLmo::ColNorm);
  EXPECT_EQ(o.scale_hidden, 3.0);
  EXPECT_EQ(o.momentum, 1.0);
  expect_rejected(s, "scion",
                  {"momentum = 0.0", "momentum = 1.5", "output_lmo = \"spectral\"", "scale_gain = 0.0",
                   "ns_steps = 0", "scale_hiden = 1.0"});
  expect_docs_cite(s, "LIONS-EPFL/scion");
}

TEST(Scion, ShippedTomlHasEveryKeyAtItsDefault) {
  const Config c = load_shipped_optimizer_toml("scion");
  EXPECT_EQ(c.get_float("optimizer.lr"), 0.00036);  // examples/modded-nanogpt learning_rate
  EXPECT_EQ(c.get_float("optimizer.weight_decay"), 0.0);
  expect_every_key_set_at_default(c, "scion");
  // With the config, make_scion reads model.tie_embeddings.
  ParameterSet ps;
  ps.add("embed/weight", ParamRole::Embedding, {8, 4}, DType::F32);
  OptimizerContext ctx;
  ctx.config = &c;
  auto made = make_scion(base_cfg(1e-3), ps, ctx);
  EXPECT_EQ(dynamic_cast<Scion&>(*made).scale_of(0), c.get_bool("model.tie_embeddings") ? 3000.0 : 1.0);
}

// ---- training ---------------------------------------------------------------------------------------

TEST(Scion, TrainsTinyModelOnPermutationTask) {
  Olmo2 model(tiny_model());
  model.init(5);
  Scion scion(base_cfg(0.00036), ScionOptions{}, model.params(), true);
  const double loss = train_tiny(scion, model, 100, 0.00036);
  std::printf("scion: tiny model loss after %d steps %.4f (ln 64 = %.4f)\n", 100, loss, std::log(64.0));
  EXPECT_LT(loss, 0.1);
}

}  // namespace
}  // namespace quopt
