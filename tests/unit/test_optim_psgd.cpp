// PSGD-Kron: the factor update, preconditioning, schedule and whole steps against independent fp64
// implementations of the formulas (kron_torch kron.py), the invariants (triangular factors, positive
// definite preconditioner), the whitening fixed point, the config keys, and training the tiny model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/config.hpp"
#include "io/run_config.hpp"
#include "kernels/psgd_ops.hpp"
#include "model/olmo2.hpp"
#include "optim/psgd_kron.hpp"
#include "support/optim_unit.hpp"

namespace quopt {
namespace {

using Kind = PsgdFactorKind;

// ---- a straightforward fp64 implementation of PSGD-Kron (dense matrices) ---------------------------

using testing::expect_every_key_set_at_default;
using testing::fill_normal;
using testing::identity;
using testing::load_shipped_optimizer_toml;
using testing::Mat;
using testing::matmul;
using testing::tiny_model;
using testing::train_tiny;

Mat transpose(const Mat& a, int m, int n) {
  Mat t(static_cast<std::size_t>(m * n));
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) t[j * m + i] = a[i * n + j];
  return t;
}
// Inverse of an upper triangular matrix by back substitution, column by column.
Mat inverse_upper(const Mat& u, int n) {
  Mat x(static_cast<std::size_t>(n * n), 0.0);
  for (int c = 0; c < n; ++c)
    for (int i = n - 1; i >= 0; --i) {
      double s = i == c ? 1.0 : 0.0;
      for (int k = i + 1; k < n; ++k) s -= u[i * n + k] * x[k * n + c];
      x[i * n + c] = s / u[i * n + i];
    }
  return x;
}
// The spectral-norm lower bound as kron_torch's _lb describes it.
double ref_lower_bound(const Mat& s, int n) {
  double m = 0.0;
  for (double v : s) m = std::max(m, std::fabs(v));
  if (m == 0.0) return 0.0;
  int best = 0;
  double bn = -1.0;
  for (int j = 0; j < n; ++j) {
    double a = 0.0;
    for (int i = 0; i < n; ++i) a += (s[i * n + j] / m) * (s[i * n + j] / m);
    if (a > bn) bn = a, best = j;
  }
  std::vector<double> x(n), y(n, 0.0);
  for (int i = 0; i < n; ++i) x[i] = s[i * n + best] / m;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) y[j] += x[i] * s[i * n + j] / m;
  double ny = 0.0;
  for (double v : y) ny += v * v;
  ny = std::sqrt(ny);
  double nz = 0.0;
  for (int k = 0; k < n; ++k) {
    double z = 0.0;
    for (int j = 0; j < n; ++j) z += s[k * n + j] / m * y[j] / ny;
    nz += z * z;
  }
  return std::sqrt(nz) * m;
}
// Largest eigenvalue of a symmetric PSD matrix by many power iterations.
double spectral_norm(const Mat& s, int n) {
  std::vector<double> x(n, 1.0);
  double lam = 0.0;
  for (int it = 0; it < 5000; ++it) {
    std::vector<double> y(n, 0.0);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) y[i] += s[i * n + j] * x[j];
    double ny = 0.0;
    for (double v : y) ny += v * v;
    ny = std::sqrt(ny);
    lam = ny;
    for (int i = 0; i < n; ++i) x[i] = y[i] / ny;
  }
  return lam;
}
// Cholesky of a symmetric matrix in fp64; false if not positive definite.
bool cholesky_ok(const Mat& a, int n) {
  Mat l(static_cast<std::size_t>(n * n), 0.0);
  for (int j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (int k = 0; k < j; ++k) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0.0)) return false;
    l[j * n + j] = std::sqrt(d);
    for (int i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (int k = 0; k < j; ++k) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / l[j * n + j];
    }
  }
  return true;
}

// One factor as a dense matrix (a diagonal factor is a diagonal matrix; None is the 1x1 identity).
struct RefFactor {
  Kind kind = Kind::None;
  int n = 1;
  Mat q = {1.0};
};

struct RefParam {
  std::string name;
  ParamRole role;
  Shape shape;
  int rows, cols;
  RefFactor left, right;
  Mat m, w;
};

// Factor update with probe v (the formulas of kron_torch _update_precond), all fp64.
void ref_update(RefFactor& l, RefFactor& r, const Mat& g, const Mat& v, int rows, int cols, double lr) {
  double mean_abs = 0.0;
  for (double x : g) mean_abs += std::fabs(x);
  mean_abs /= static_cast<double>(g.size());
  Mat gn = g;
  for (std::size_t k = 0; k < g.size(); ++k)
    gn[k] += std::sqrt(static_cast<double>(FLT_EPSILON)) * mean_abs * v[k];
  const Mat a = matmul(matmul(l.q, gn, rows, rows, cols), transpose(r.q, cols, cols), rows, cols, cols);
  const Mat b = matmul(matmul(transpose(inverse_upper(l.q, rows), rows, rows), v, rows, rows, cols),
                       inverse_upper(r.q, cols), rows, cols, cols);
  for (int side = 0; side < 2; ++side) {
    RefFactor& f = side == 0 ? l : r;
    if (f.kind == Kind::None) continue;
    const int n = f.n;
    Mat t1, t2;
    if (side == 0) {
      t1 = matmul(a, transpose(a, rows, cols), rows, cols, rows);
      t2 = matmul(b, transpose(b, rows, cols), rows, cols, rows);
    } else {
      t1 = matmul(transpose(a, rows, cols), a, cols, rows, cols);
      t2 = matmul(transpose(b, rows, cols), b, cols, rows, cols);
    }
    if (f.kind == Kind::Diagonal) {  // the diagonals of the Gram matrices
      double norm = 0.0;
      for (int i = 0; i < n; ++i) norm = std::max(norm, std::fabs(t1[i * n + i] + t2[i * n + i]));
      for (int i = 0; i < n; ++i)
        f.q[i * n + i] -= lr * (t1[i * n + i] - t2[i * n + i]) / norm * f.q[i * n + i];
    } else {
      Mat sum(t1.size()), e(t1.size(), 0.0);
      for (std::size_t k = 0; k < t1.size(); ++k) sum[k] = t1[k] + t2[k];
      const double lb = ref_lower_bound(sum, n);
      for (int i = 0; i < n; ++i)
        for (int j = i; j < n; ++j) e[i * n + j] = lr * (t1[i * n + j] - t2[i * n + j]) / lb;
      const Mat eq = matmul(e, f.q, n, n, n);
      for (std::size_t k = 0; k < f.q.size(); ++k) f.q[k] -= eq[k];
    }
  }
}

RefFactor ref_factor(Kind kind, int n, double scale) {
  RefFactor f;
  f.kind = kind;
  f.n = kind == Kind::None ? 1 : n;
  f.q = identity(f.n);
  if (kind != Kind::None)
    for (int i = 0; i < n; ++i) f.q[i * n + i] = scale;
  return f;
}

// ---- helpers ----------------------------------------------------------------------------------------

std::map<std::string, Tensor> state_map(Optimizer& opt) {
  std::map<std::string, Tensor> m;
  for (auto& s : opt.state()) m[s.name] = s.tensor;
  return m;
}

PsgdOptions always_update() {
  PsgdOptions o;
  o.update_prob_flat_start = 1000000000;  // p = 1 for every step of the test
  return o;
}

// ---- schedule, triggers, factor kinds --------------------------------------------------------------

TEST(PsgdSchedule, MatchesKronTorchFormula) {
  const PsgdOptions o;  // defaults: max 1, min 0.03, decay 0.001, flat start 500
  // Flat at 1 up to step 500, then exp(-0.001 (n - 500)) down to 0.03, reached at 500 + ln(1/0.03)/0.001.
  const double n_floor = 500.0 + std::log(1.0 / 0.03) / 0.001;
  for (std::int64_t n : {0, 1, 250, 499, 500, 501, 1000, 2000, 3000, 4000, 4006, 4007, 10000, 1000000}) {
    double want = 1.0;
    if (n > 500)
      want = static_cast<double>(n) >= n_floor ? 0.03 : std::exp(-0.001 * (static_cast<double>(n) - 500.0));
    EXPECT_NEAR(psgd_update_probability(o, n), want, 1e-12) << "step " << n;
  }
  EXPECT_NEAR(psgd_update_probability(o, 1500), std::exp(-1.0), 1e-12);
  PsgdOptions c;
  c.update_prob_max = 0.5;
  c.update_prob_min = 0.1;
  c.update_prob_decay = 0.01;
  c.update_prob_flat_start = 10;
  EXPECT_NEAR(psgd_update_probability(c, 0), 0.5, 1e-12);
  EXPECT_NEAR(psgd_update_probability(c, 110), 0.5 * std::exp(-1.0), 1e-12);
  EXPECT_NEAR(psgd_update_probability(c, 1000), 0.1, 1e-12);
}

// Steps (from step 0) at which a one-parameter optimizer updates its preconditioner.
std::vector<bool> update_flags(const PsgdOptions& o, int steps, std::uint64_t seed, std::int64_t start = 0) {
  ParameterSet ps;
  ps.add("layer/w", ParamRole::Gain, {2}, DType::F32);
  OptimizerConfig cfg;
  OptimizerContext ctx;
  ctx.seed = seed;
  PsgdKron opt(cfg, o, ps, ctx);
  opt.set_steps_taken(start);
  std::vector<bool> flags;
  for (int s = 0; s < steps; ++s) {
    ps.all()[0].grad.data<float>()[0] = 1.0f;
    opt.step(ps, 1e-3);
    flags.push_back(opt.last_step_updated_preconditioner());
  }
  return flags;
}

TEST(PsgdSchedule, CounterTriggerFollowsKronTorchAndResumes) {
  PsgdOptions o;
  o.update_trigger = PsgdTrigger::Counter;
  o.update_prob_flat_start = 5;
  o.update_prob_decay = 0.02;
  o.update_prob_min = 0.1;
  const int steps = 300;
  const auto flags = update_flags(o, steps, 1);
  // kron_torch: counter += 1; do_update = counter >= 1 / p(n); reset on update.
  int counter = 0, updates = 0;
  for (int n = 0; n < steps; ++n) {
    const double p = std::clamp(std::exp(-0.02 * (n - 5.0)), 0.1, 1.0);
    ++counter;
    const bool up = counter >= 1.0 / p;
    if (up) counter = 0;
    updates += up;
    EXPECT_EQ(flags[n], up) << "step " << n;
  }
  EXPECT_GT(updates, 30);
  EXPECT_LT(updates, 100);
  // A resumed optimizer (fresh, steps set) continues the same pattern.
  const auto resumed = update_flags(o, 50, 1, 200);
  for (int s = 0; s < 50; ++s) EXPECT_EQ(resumed[s], flags[200 + s]) << "step " << 200 + s;
}

TEST(PsgdSchedule, RandomTriggerHasProbabilityPAndIsKeyedByStep) {
  PsgdOptions o;
  o.update_prob_flat_start = 0;
  o.update_prob_decay = 10.0;  // at the floor from step 1 on
  o.update_prob_min = 0.25;
  const int steps = 3000;
  const auto flags = update_flags(o, steps, 7);
  int updates = 0;
  for (int n = 1; n < steps; ++n) updates += flags[n];
  const double frac = static_cast<double>(updates) / (steps - 1);
  EXPECT_NEAR(frac, 0.25, 0.04);  // binomial sd 0.008
  EXPECT_TRUE(flags[0]);          // p(0) = 1
  // Keyed by (seed, step): a resume reproduces the draws, another seed does not.
  const auto resumed = update_flags(o, 100, 7, 1000);
  for (int s = 0; s < 100; ++s) EXPECT_EQ(resumed[s], flags[1000 + s]);
  const auto other = update_flags(o, 200, 8, 1000);
  int differ = 0;
  for (int s = 0; s < 200; ++s) differ += other[s] != flags[1000 + s];
  EXPECT_GT(differ, 10);
}

TEST(PsgdFactors, KindsFollowKronTorchRules) {
  PsgdOptions o;
  EXPECT_EQ(psgd_factor_kinds({64, 32}, o), (std::vector<Kind>{Kind::Triangular, Kind::Triangular}));
  EXPECT_EQ(psgd_factor_kinds({32}, o), (std::vector<Kind>{Kind::Diagonal}));  // 1-D < min_ndim_triangular
  EXPECT_EQ(psgd_factor_kinds({1, 32}, o), (std::vector<Kind>{Kind::Diagonal, Kind::Triangular}));
  EXPECT_EQ(psgd_factor_kinds({100352, 2048}, o), (std::vector<Kind>{Kind::Diagonal, Kind::Triangular}));
  EXPECT_EQ(psgd_factor_kinds({8192, 8193}, o), (std::vector<Kind>{Kind::Triangular, Kind::Diagonal}));
  o.min_ndim_triangular = 1;
  EXPECT_EQ(psgd_factor_kinds({32}, o), (std::vector<Kind>{Kind::Triangular}));
  o = PsgdOptions{};
  o.memory_save_mode = PsgdMemorySave::SmartOneDiag;
  EXPECT_EQ(psgd_factor_kinds({64, 32}, o), (std::vector<Kind>{Kind::Diagonal, Kind::Triangular}));
  EXPECT_EQ(psgd_factor_kinds({32, 32}, o), (std::vector<Kind>{Kind::Triangular, Kind::Triangular}));
  o.memory_save_mode = PsgdMemorySave::OneDiag;
  EXPECT_EQ(psgd_factor_kinds({16, 32}, o), (std::vector<Kind>{Kind::Triangular, Kind::Diagonal}));
  EXPECT_EQ(psgd_factor_kinds({32, 32}, o), (std::vector<Kind>{Kind::Triangular, Kind::Diagonal}));
  o.memory_save_mode = PsgdMemorySave::AllDiag;
  EXPECT_EQ(psgd_factor_kinds({16, 32}, o), (std::vector<Kind>{Kind::Diagonal, Kind::Diagonal}));
}

// ---- the numerical kernels by hand -----------------------------------------------------------------

// A host f32 tensor holding v (shape given), and a tensor's values back.
Tensor f32_tensor(const std::vector<float>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}
std::vector<float> values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

TEST(PsgdHand, DiagonalFactorUpdate) {
  // 1-D [3], q = (1, 0.5, 2), fixed g and v: a = q (g + d v), b = v / q, q -= 0.1 (a^2 - b^2) / max|a^2 +
  // b^2| q with d = sqrt(eps_f32) mean|g|.
  const std::vector<double> q0 = {1.0, 0.5, 2.0}, g = {0.3, -1.2, 0.7}, v = {-0.4, 1.1, 0.25};
  Tensor qt = f32_tensor({q0.begin(), q0.end()}, {3}), gt = f32_tensor({g.begin(), g.end()}, {1, 3}),
         vt = f32_tensor({v.begin(), v.end()}, {1, 3});
  psgd_detail::Factor left, right{Kind::Diagonal, qt};
  EXPECT_EQ(psgd_detail::update_factors(left, right, gt, vt, 0.1), 0);
  const std::vector<float> q = values(qt), gf = values(gt), vf = values(vt);
  const double d = std::sqrt(static_cast<double>(FLT_EPSILON)) * (0.3 + 1.2 + 0.7) / 3.0;
  double a2[3], b2[3], norm = 0.0;
  for (int i = 0; i < 3; ++i) {
    const double a = q0[i] * (g[i] + d * v[i]), b = v[i] / q0[i];
    a2[i] = a * a;
    b2[i] = b * b;
    norm = std::max(norm, a2[i] + b2[i]);
  }
  for (int i = 0; i < 3; ++i) {
    const double want = q0[i] - 0.1 * (a2[i] - b2[i]) / norm * q0[i];
    EXPECT_NEAR(q[i], want, 1e-6 * std::fabs(want)) << i;
  }
  // The gradient and probe are not modified.
  EXPECT_EQ(gf[1], -1.2f);
  EXPECT_EQ(vf[2], 0.25f);
}

TEST(PsgdHand, TriangularFactorUpdateMatchesFp64) {
  // G, V [3, 2]; Q1 (3x3) and Q2 (2x2) non-trivial upper triangular.
  const int rows = 3, cols = 2;
  const Mat g = {0.5, -1.0, 2.0, 0.25, -0.75, 1.5}, v = {1.0, -0.5, 0.3, 0.8, -1.2, 0.1};
  RefFactor l{Kind::Triangular, 3, {1.2, 0.3, -0.2, 0.0, 0.9, 0.4, 0.0, 0.0, 1.1}};
  RefFactor r{Kind::Triangular, 2, {0.8, -0.3, 0.0, 1.3}};
  const Tensor gt = f32_tensor({g.begin(), g.end()}, {rows, cols}),
               vt = f32_tensor({v.begin(), v.end()}, {rows, cols});
  psgd_detail::Factor lf{Kind::Triangular, f32_tensor({l.q.begin(), l.q.end()}, {3, 3})},
      rf{Kind::Triangular, f32_tensor({r.q.begin(), r.q.end()}, {2, 2})};
  for (int it = 0; it < 3; ++it) {  // three updates with the same pair
    ASSERT_EQ(psgd_detail::update_factors(lf, rf, gt, vt, 0.1), 0);
    ref_update(l, r, g, v, rows, cols, 0.1);
  }
  const std::vector<float> lq = values(lf.q), rq = values(rf.q);
  for (int k = 0; k < 9; ++k) EXPECT_NEAR(lq[k], l.q[k], 2e-6 * (1.0 + std::fabs(l.q[k]))) << "Q1 " << k;
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(rq[k], r.q[k], 2e-6 * (1.0 + std::fabs(r.q[k]))) << "Q2 " << k;
  // Exact zeros below the diagonal, and the factors moved.
  EXPECT_EQ(lq[3], 0.0f);
  EXPECT_EQ(lq[6], 0.0f);
  EXPECT_EQ(lq[7], 0.0f);
  EXPECT_EQ(rq[2], 0.0f);
  EXPECT_GT(std::fabs(lq[0] - 1.2f), 1e-3);

  // Preconditioning x <- Q1^T Q1 x Q2^T Q2.
  Tensor xt = gt.clone();
  psgd_detail::precondition(lf, rf, xt);
  const std::vector<float> x = values(xt);
  Mat lqd(lq.begin(), lq.end()), rqd(rq.begin(), rq.end());
  const Mat p = matmul(
      matmul(matmul(matmul(transpose(lqd, 3, 3), lqd, 3, 3, 3), g, 3, 3, 2), transpose(rqd, 2, 2), 3, 2, 2),
      rqd, 3, 2, 2);
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(x[k], p[k], 1e-5 * (1.0 + std::fabs(p[k]))) << k;
}

TEST(PsgdHand, NormLowerBound) {
  Rng rng(3, 3);
  for (int n : {1, 2, 5, 9}) {
    // S = X X^T, PSD: max column norm <= lb <= ||S||_2 (power iteration is monotone on PSD matrices).
    Mat x(static_cast<std::size_t>(n * 4));
    for (auto& e : x) e = rng.normal();
    const Mat s = matmul(x, transpose(x, n, 4), n, 4, n);
    const double lb = kernels::norm_lower_bound(f32_tensor({s.begin(), s.end()}, {n, n}));
    double colmax = 0.0;
    for (int j = 0; j < n; ++j) {
      double c = 0.0;
      for (int i = 0; i < n; ++i) c += s[i * n + j] * s[i * n + j];
      colmax = std::max(colmax, std::sqrt(c));
    }
    const double sn = spectral_norm(s, n);
    EXPECT_LE(lb, sn * (1.0 + 1e-5)) << n;
    EXPECT_GE(lb, colmax * (1.0 - 1e-5)) << n;
    EXPECT_NEAR(lb, ref_lower_bound(s, n), 1e-5 * sn) << n;
  }
  // Rank one: exact. Zero matrix: 0.
  const Tensor r1 = f32_tensor({1, 2, 3, 2, 4, 6, 3, 6, 9}, {3, 3});  // u u^T with |u|^2 = 14
  EXPECT_NEAR(kernels::norm_lower_bound(r1), 14.0, 1e-5);
  EXPECT_EQ(kernels::norm_lower_bound(Tensor::zeros({2, 2}, DType::F32)), 0.0);
}

TEST(PsgdHand, ClipAndBalance) {
  Tensor x = f32_tensor({3.0f, -4.0f}, {2});  // rms = sqrt(12.5)
  const double c = kernels::clip_rms(x, 1.1);
  EXPECT_NEAR(c, 1.1 / std::sqrt(12.5), 1e-9);
  EXPECT_NEAR(x.data<float>()[0], 3.0 * 1.1 / std::sqrt(12.5), 1e-6);
  Tensor y = f32_tensor({0.3f, -0.4f}, {2});
  EXPECT_EQ(kernels::clip_rms(y, 1.1), 1.0);
  EXPECT_EQ(y.data<float>()[0], 0.3f);
  // Balance: max-abs 4 and 0.25 -> both 1; the Kronecker product is unchanged.
  psgd_detail::Factor fa{Kind::Triangular, f32_tensor({4.0f, 1.0f, 0.0f, 2.0f}, {2, 2})},
      fb{Kind::Diagonal, f32_tensor({0.25f, 0.125f}, {2})};
  psgd_detail::balance(fa, fb);
  const std::vector<float> a = values(fa.q), b = values(fb.q);
  EXPECT_NEAR(a[0], 1.0f, 1e-6);
  EXPECT_NEAR(a[3], 0.5f, 1e-6);
  EXPECT_NEAR(b[0], 1.0f, 1e-6);
  EXPECT_NEAR(b[1], 0.5f, 1e-6);
}

// ---- whole steps against the fp64 implementation ------------------------------------------------------

struct StepCase {
  PsgdOptions opt;
  std::vector<std::pair<std::string, Shape>> params;
};

void run_steps_vs_reference(const StepCase& sc, int steps) {
  const std::uint64_t seed = 11;
  ParameterSet ps;
  std::vector<RefParam> ref;
  Rng init(5, 6);
  for (const auto& [name, shape] : sc.params) {
    const ParamRole role = shape.size() == 2 ? ParamRole::Hidden : ParamRole::Gain;
    Parameter& p = ps.add(name, role, shape, DType::F32);
    fill_normal(p.value, init, 0.5);
    RefParam r;
    r.name = name;
    r.role = role;
    r.shape = shape;
    r.rows = shape.size() == 2 ? static_cast<int>(shape[0]) : 1;
    r.cols = static_cast<int>(shape.back());
    const auto kinds = psgd_factor_kinds(shape, sc.opt);
    const double scale = std::pow(sc.opt.precond_init_scale, 1.0 / static_cast<double>(shape.size()));
    if (shape.size() == 2) {
      r.left = ref_factor(kinds[0], r.rows, scale);
      r.right = ref_factor(kinds[1], r.cols, scale);
    } else {
      r.right = ref_factor(kinds[0], r.cols, scale);
    }
    r.m.assign(static_cast<std::size_t>(r.rows * r.cols), 0.0);
    r.w.assign(p.value.data<float>(), p.value.data<float>() + p.value.numel());
    ref.push_back(r);
  }
  OptimizerConfig cfg;
  cfg.weight_decay = 0.3;
  cfg.decay_roles = {"hidden"};
  OptimizerContext ctx;
  ctx.seed = seed;
  PsgdKron opt(cfg, sc.opt, ps, ctx);
  const double lr = 0.05;
  Rng grads(9, 9);
  for (int t = 1; t <= steps; ++t) {
    std::size_t i = 0;
    for (auto& p : ps.all()) {
      fill_normal(p.grad, grads, 2.0);
      RefParam& r = ref[i++];
      const int cnt = r.rows * r.cols;
      Mat g(p.grad.data<float>(), p.grad.data<float>() + cnt);
      const double b1 = sc.opt.b1;
      Mat mh(static_cast<std::size_t>(cnt));
      for (int k = 0; k < cnt; ++k) {
        r.m[k] = b1 * r.m[k] + (1.0 - b1) * g[k];
        mh[k] = r.m[k] / (1.0 - std::pow(b1, t));
      }
      // p = 1 at these steps, so every step updates; balance when balance_prob is 1.
      if (sc.opt.balance_prob >= 1.0 && r.left.kind != Kind::None) {
        double n0 = 0.0, n1 = 0.0;
        for (double e : r.left.q) n0 = std::max(n0, std::fabs(e));
        for (double e : r.right.q) n1 = std::max(n1, std::fabs(e));
        const double gm = std::sqrt(n0 * n1);
        for (double& e : r.left.q) e *= gm / n0;
        for (double& e : r.right.q) e *= gm / n1;
      }
      Rng noise(seed, hash_name("psgd/noise/" + r.name));
      noise.set_counter(static_cast<std::uint64_t>(t - 1) * 2u * static_cast<std::uint64_t>(cnt));
      Mat v(static_cast<std::size_t>(cnt));
      for (auto& e : v) e = static_cast<double>(static_cast<float>(noise.normal()));
      ref_update(r.left, r.right, sc.opt.momentum_into_precond_update ? mh : g, v, r.rows, r.cols,
                 sc.opt.precond_lr);
      const int R = r.rows, C = r.cols, L = r.left.n;
      Mat d = matmul(matmul(transpose(r.left.q, L, L), r.left.q, L, L, L), mh, R, R, C);
      d = matmul(matmul(d, transpose(r.right.q, C, C), R, C, C), r.right.q, R, C, C);
      double ss = 0.0;
      for (double e : d) ss += e * e;
      const double c = std::min(1.0, sc.opt.clip_rms / (std::sqrt(ss / cnt) + 1e-12));
      const double wd = r.role == ParamRole::Hidden ? 0.3 : 0.0;
      for (int k = 0; k < cnt; ++k) r.w[k] -= lr * (c * d[k] + wd * r.w[k]);
    }
    opt.step(ps, lr);
    ASSERT_TRUE(opt.last_step_updated_preconditioner());
    EXPECT_EQ(opt.last_step_balanced(), sc.opt.balance_prob >= 1.0);
  }
  auto st = state_map(opt);
  std::size_t i = 0;
  for (auto& p : ps.all()) {
    const RefParam& r = ref[i++];
    for (std::int64_t k = 0; k < p.value.numel(); ++k)
      EXPECT_NEAR(p.value.data<float>()[k], r.w[k], 2e-5 * (1.0 + std::fabs(r.w[k])))
          << r.name << "[" << k << "]";
    // Factors: Q.0 is the left factor of a matrix, the only factor of a 1-D parameter.
    std::vector<const RefFactor*> fs;
    if (r.left.kind != Kind::None) fs.push_back(&r.left);
    fs.push_back(&r.right);
    for (std::size_t d = 0; d < fs.size(); ++d) {
      const Tensor& q = st.at(cat(r.name, "/Q.", d));
      const int n = fs[d]->n;
      for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b) {
          const double want = fs[d]->q[a * n + b];
          const double got = fs[d]->kind == Kind::Diagonal ? (a == b ? q.data<float>()[a] : 0.0)
                                                           : q.data<float>()[a * n + b];
          EXPECT_NEAR(got, want, 2e-5 * (1.0 + std::fabs(want)))
              << r.name << " Q." << d << "[" << a << "," << b << "]";
        }
    }
  }
}

TEST(PsgdSteps, TriangularAndDiagonalMatchFp64WithBalance) {
  StepCase sc{always_update(), {{"layer/w", {4, 3}}, {"layer/gain", {3}}}};
  sc.opt.balance_prob = 1.0;  // balance on every update step, to check it too
  run_steps_vs_reference(sc, 4);
}

TEST(PsgdSteps, MixedFactorKindsMatchFp64) {
  // one_diag: the [4, 3] matrix's larger dimension diagonal; min_ndim_triangular 1: the gain triangular;
  // raw gradients into the preconditioner fit.
  StepCase sc{always_update(), {{"layer/w", {4, 3}}, {"layer/gain", {3}}, {"layer/row", {1, 3}}}};
  sc.opt.memory_save_mode = PsgdMemorySave::OneDiag;
  sc.opt.min_ndim_triangular = 1;
  sc.opt.momentum_into_precond_update = false;
  sc.opt.balance_prob = 0.0;
  sc.opt.precond_init_scale = 2.0;
  run_steps_vs_reference(sc, 4);
}

// ---- invariants ------------------------------------------------------------------------------------------

TEST(PsgdInvariants, FactorsStayTriangularAndPreconditionerPositiveDefinite) {
  ParameterSet ps;
  ps.add("layer/w", ParamRole::Hidden, {6, 5}, DType::F32);
  ps.add("layer/gain", ParamRole::Gain, {7}, DType::F32);
  OptimizerConfig cfg;
  PsgdOptions o = always_update();
  o.balance_prob = 0.05;
  PsgdKron opt(cfg, o, ps, {});
  Rng rng(21, 1);
  // Badly scaled gradients: rows and columns with scales over two decades.
  for (int t = 0; t < 300; ++t) {
    for (auto& p : ps.all()) {
      const std::int64_t cols = p.value.dim(-1);
      for (std::int64_t k = 0; k < p.value.numel(); ++k) {
        const double s = std::pow(10.0, static_cast<double>(k % cols) / cols) *
                         std::pow(3.0, static_cast<double>(k / cols) / 3.0);
        p.grad.data<float>()[k] = static_cast<float>(s * rng.normal());
      }
    }
    opt.step(ps, 1e-3);
  }
  EXPECT_EQ(opt.report().failed_roots, 0);
  auto st = state_map(opt);
  for (const char* name : {"layer/w/Q.0", "layer/w/Q.1"}) {
    const Tensor& q = st.at(name);
    const int n = static_cast<int>(q.dim(0));
    Mat qd(q.data<float>(), q.data<float>() + q.numel());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < i; ++j) EXPECT_EQ(q.data<float>()[i * n + j], 0.0f) << name << " below diagonal";
    // The factors moved away from the identity.
    double off = 0.0;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) off += std::fabs(qd[i * n + j]);
    EXPECT_GT(off, 1e-3) << name;
    const Mat p = matmul(transpose(qd, n, n), qd, n, n, n);  // Q^T Q
    EXPECT_TRUE(cholesky_ok(p, n)) << name << " Q^T Q is not positive definite";
  }
  const Tensor& qg = st.at("layer/gain/Q.0");
  ASSERT_EQ(qg.ndim(), 1);
  for (std::int64_t i = 0; i < qg.numel(); ++i) EXPECT_GT(qg.data<float>()[i], 0.0f);
}

TEST(PsgdInvariants, DiagonalPreconditionerWhitensGradientNoise) {
  // g_i ~ N(0, s_i^2): the whitening criterion's fixed point is P = q^2 with q^4 s^2 = 1, i.e. q^2 = 1/s.
  ParameterSet ps;
  ps.add("layer/gain", ParamRole::Gain, {4}, DType::F32);
  OptimizerConfig cfg;
  PsgdOptions o = always_update();
  o.momentum_into_precond_update = false;  // fit the raw gradients
  PsgdKron opt(cfg, o, ps, {});
  const double s[4] = {0.5, 1.0, 2.0, 4.0};
  Rng rng(4, 4);
  double mean_log[4] = {0, 0, 0, 0};
  const int steps = 4000, burn = 1500;
  for (int t = 0; t < steps; ++t) {
    for (int i = 0; i < 4; ++i) ps.all()[0].grad.data<float>()[i] = static_cast<float>(s[i] * rng.normal());
    opt.step(ps, 1e-6);
    if (t >= burn) {
      const Tensor q = state_map(opt).at("layer/gain/Q.0");  // a handle: the map is a temporary
      for (int i = 0; i < 4; ++i) mean_log[i] += std::log(q.data<float>()[i] * q.data<float>()[i] * s[i]);
    }
  }
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(mean_log[i] / (steps - burn), 0.0, 0.15) << "dimension " << i;
}

TEST(PsgdInvariants, TriangularPreconditionerWhitensCorrelatedRows) {
  // G = C Z with Z iid N(0, 1) [3, 2]: Cov(vec G) = (C C^T) (x) I. The fixed point of the whitening fit
  // has P Cov P = I for P = (Q1^T Q1) (x) (Q2^T Q2), i.e. (P1 C C^T P1) (x) P2^2 = I.
  ParameterSet ps;
  ps.add("layer/w", ParamRole::Hidden, {3, 2}, DType::F32);
  OptimizerConfig cfg;
  PsgdOptions o = always_update();
  o.momentum_into_precond_update = false;
  PsgdKron opt(cfg, o, ps, {});
  const Mat c = {2.0, 0.0, 0.0, 1.0, 1.0, 0.0, -0.5, 0.3, 0.4};
  const Mat sigma = matmul(c, transpose(c, 3, 3), 3, 3, 3);
  Rng rng(8, 8);
  Mat avg(36, 0.0);
  const int steps = 4000, burn = 2000;
  for (int t = 0; t < steps; ++t) {
    Mat z(6);
    for (auto& e : z) e = rng.normal();
    const Mat g = matmul(c, z, 3, 3, 2);
    for (int k = 0; k < 6; ++k) ps.all()[0].grad.data<float>()[k] = static_cast<float>(g[k]);
    opt.step(ps, 1e-6);
    if (t < burn) continue;
    auto st = state_map(opt);
    const Tensor &q1 = st.at("layer/w/Q.0"), &q2 = st.at("layer/w/Q.1");
    const Mat a(q1.data<float>(), q1.data<float>() + 9), b(q2.data<float>(), q2.data<float>() + 4);
    const Mat p1 = matmul(transpose(a, 3, 3), a, 3, 3, 3), p2 = matmul(transpose(b, 2, 2), b, 2, 2, 2);
    const Mat k1 = matmul(matmul(p1, sigma, 3, 3, 3), p1, 3, 3, 3), k2 = matmul(p2, p2, 2, 2, 2);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int r = 0; r < 2; ++r)
          for (int s = 0; s < 2; ++s) avg[(i * 2 + r) * 6 + (j * 2 + s)] += k1[i * 3 + j] * k2[r * 2 + s];
  }
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j)
      if (i == j) {
        // The averaged whitened covariance sits slightly above I (the fit fluctuates around its fixed
        // point); unpreconditioned, its eigenvalues spread over a factor of about 40.
        EXPECT_GT(avg[i * 6 + j] / (steps - burn), 0.8) << i;
        EXPECT_LT(avg[i * 6 + j] / (steps - burn), 1.4) << i;
      } else {
        EXPECT_NEAR(avg[i * 6 + j] / (steps - burn), 0.0, 0.12) << "(" << i << ", " << j << ")";
      }
}

// ---- config ---------------------------------------------------------------------------------------------

const Schema& psgd_schema() {
  static const Schema s = [] {
    Schema sc;
    add_psgd_keys(sc);
    return sc;
  }();
  return s;
}

TEST(PsgdConfig, DefaultsMatchOptionsAndBadValuesAreRejected) {
  Config c = Config::defaults(psgd_schema());
  const PsgdOptions o = psgd_options(c), d;
  EXPECT_EQ(o.b1, d.b1);
  EXPECT_EQ(o.max_size_triangular, d.max_size_triangular);
  EXPECT_EQ(o.min_ndim_triangular, d.min_ndim_triangular);
  EXPECT_EQ(o.memory_save_mode, d.memory_save_mode);
  EXPECT_EQ(o.momentum_into_precond_update, d.momentum_into_precond_update);
  EXPECT_EQ(o.precond_lr, d.precond_lr);
  EXPECT_EQ(o.precond_init_scale, d.precond_init_scale);
  EXPECT_EQ(o.update_prob_max, d.update_prob_max);
  EXPECT_EQ(o.update_prob_min, d.update_prob_min);
  EXPECT_EQ(o.update_prob_decay, d.update_prob_decay);
  EXPECT_EQ(o.update_prob_flat_start, d.update_prob_flat_start);
  EXPECT_EQ(o.update_trigger, d.update_trigger);
  EXPECT_EQ(o.balance_prob, d.balance_prob);
  EXPECT_EQ(o.clip_rms, d.clip_rms);
  for (const auto& spec : psgd_schema().specs()) EXPECT_FALSE(spec.doc.empty()) << spec.key;

  c.set("optimizer.psgd.memory_save_mode", "\"one_diag\"");
  c.set("optimizer.psgd.update_trigger", "\"counter\"");
  EXPECT_EQ(psgd_options(c).memory_save_mode, PsgdMemorySave::OneDiag);
  EXPECT_EQ(psgd_options(c).update_trigger, PsgdTrigger::Counter);
  EXPECT_THROW(c.set("optimizer.psgd.memory_save_mode", "\"two_diag\""), Error);
  EXPECT_THROW(c.set("optimizer.psgd.b1", "1.0"), Error);
  EXPECT_THROW(c.set("optimizer.psgd.precond_lr", "0"), Error);
  c.set("optimizer.psgd.update_prob_min", "0.9");
  c.set("optimizer.psgd.update_prob_max", "0.5");
  try {
    psgd_options(c);
    FAIL() << "update_prob_min > update_prob_max accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("optimizer.psgd.update_prob_min"), std::string::npos) << msg;
    EXPECT_NE(msg.find("optimizer.psgd.update_prob_max"), std::string::npos) << msg;
  }
  // The factory reads the keys from the context's config.
  c.set("optimizer.psgd.update_prob_min", "0.03");
  c.set("optimizer.psgd.update_prob_max", "1.0");
  ParameterSet ps;
  ps.add("layer/w", ParamRole::Hidden, {3, 2}, DType::F32);
  OptimizerContext ctx;
  ctx.config = &c;
  auto opt = make_psgd(OptimizerConfig{}, ps, ctx);
  EXPECT_EQ(opt->name(), "psgd");
  auto* k = dynamic_cast<PsgdKron*>(opt.get());
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->options().memory_save_mode, PsgdMemorySave::OneDiag);
  EXPECT_EQ(k->factor_kinds(0), (std::vector<Kind>{Kind::Diagonal, Kind::Triangular}));
}

TEST(PsgdConfig, ShippedTomlHasEveryKeyAtItsDefault) {
  const Config c = load_shipped_optimizer_toml("psgd");
  EXPECT_EQ(c.get_float("optimizer.lr"), 3e-4);  // kron_torch Kron(lr=0.0003)
  EXPECT_EQ(c.get_list("optimizer.decay_roles"), (std::vector<std::string>{"hidden", "embedding"}));
  expect_every_key_set_at_default(c, "psgd");
}

TEST(PsgdConfig, RejectsUnsupportedParameters) {
  ParameterSet ps;
  ps.add("layer/conv", ParamRole::Hidden, {2, 3, 4}, DType::F32);
  EXPECT_THROW(PsgdKron(OptimizerConfig{}, PsgdOptions{}, ps, {}), Error);
}

// ---- training ---------------------------------------------------------------------------------------------

TEST(PsgdTraining, TinyModelLearnsPermutation) {
  Olmo2 model(tiny_model());
  model.init(1);
  OptimizerConfig cfg;
  cfg.weight_decay = 0.0;
  OptimizerContext ctx;
  ctx.seed = 3;
  PsgdKron opt(cfg, PsgdOptions{}, model.params(), ctx);
  const int steps = 120;
  double first = 0.0;
  const double last = train_tiny(opt, model, steps, 3e-3, &first);
  EXPECT_NEAR(first, std::log(64.0), 0.3);
  EXPECT_LT(last, 0.5) << "loss after " << steps << " PSGD steps (ln 64 = 4.16)";
}

}  // namespace
}  // namespace quopt
