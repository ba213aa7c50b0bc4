// SOAP (optim/soap): a few steps on small matrices against an independent fp64 implementation of the
// reference formulas (nikhilvyas/SOAP soap.py, with a Jacobi eigensolver and Gram-Schmidt QR written here),
// its invariants (identity basis = Adam, equivariance under orthogonal rotations, the first call only
// initialises), the config keys and the shipped inputs/optimizers/soap.toml, and training the tiny OLMo2
// model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/config.hpp"
#include "io/run_config.hpp"
#include "model/olmo2.hpp"
#include "optim/soap.hpp"
#include "support/optim_unit.hpp"

namespace quopt {
namespace {

using testing::expect_docs_cite;
using testing::expect_every_key_set_at_default;
using testing::expect_rejected;
using testing::fill_normal;
using testing::jacobi_eigh;
using testing::load_shipped_optimizer_toml;
using testing::Mat;
using testing::matmul;
using testing::max_rel_diff;
using testing::tiny_model;
using testing::train_tiny;
using testing::values;

// ---- independent fp64 reference ----------------------------------------------------------------------

// Orthonormal columns of a (n x n) by modified Gram-Schmidt (a QR with a positive diagonal of R).
Mat gram_schmidt(Mat a, int n) {
  for (int j = 0; j < n; ++j) {
    for (int k = 0; k < j; ++k) {
      double dot = 0;
      for (int i = 0; i < n; ++i) dot += a[i * n + j] * a[i * n + k];
      for (int i = 0; i < n; ++i) a[i * n + j] -= dot * a[i * n + k];
    }
    double nrm = 0;
    for (int i = 0; i < n; ++i) nrm += a[i * n + j] * a[i * n + j];
    nrm = std::sqrt(nrm);
    for (int i = 0; i < n; ++i) a[i * n + j] /= nrm;
  }
  return a;
}

// SOAP on one parameter view, straight from soap.py (with its per-step m round trip through the basis).
struct RefSoap {
  SoapOptions o;
  double wd = 0.0;
  std::vector<int> view;
  std::vector<bool> pre;
  std::vector<Mat> gg, q;
  Mat m, v;
  int s = 0;

  RefSoap(const SoapOptions& opt, double weight_decay, std::vector<int> vw, std::vector<bool> pr)
      : o(opt), wd(weight_decay), view(std::move(vw)), pre(std::move(pr)) {
    int n = 1;
    for (int d : view) n *= d;
    m.assign(static_cast<std::size_t>(n), 0.0);
    v = m;
    for (int d : view) {
      gg.emplace_back(static_cast<std::size_t>(d * d), 0.0);
      q.emplace_back();
    }
  }
  int rows() const { return view.size() == 1 ? 1 : view[0]; }
  int cols() const { return view.back(); }
  double sb() const { return o.shampoo_beta >= 0 ? o.shampoo_beta : o.beta2; }

  Mat project(const Mat& x, bool back) const {
    Mat y = x;
    if (view.size() == 1) return pre[0] ? matmul(q[0], y, cols(), cols(), 1, !back) : y;
    if (pre[0]) y = matmul(q[0], y, rows(), rows(), cols(), !back);
    if (pre[1]) y = matmul(y, q[1], rows(), cols(), cols(), false, back);
    return y;
  }
  void update_gg(const Mat& g) {
    for (std::size_t k = 0; k < view.size(); ++k) {
      if (!pre[k]) continue;
      const int d = view[k];
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < d; ++j) {
          double x = 0;
          if (view.size() == 1)
            x = g[static_cast<std::size_t>(i)] * g[static_cast<std::size_t>(j)];
          else if (k == 0)
            for (int c = 0; c < cols(); ++c) x += g[i * cols() + c] * g[j * cols() + c];
          else
            for (int r = 0; r < rows(); ++r) x += g[r * cols() + i] * g[r * cols() + j];
          gg[k][i * d + j] = sb() * gg[k][i * d + j] + (1 - sb()) * x;
        }
    }
  }
  // p: the parameter view (updated in place).
  void step(Mat& p, const Mat& g, double lr, int t) {
    const std::size_t n = g.size();
    if (t == 1) {
      update_gg(g);
      for (std::size_t k = 0; k < view.size(); ++k) {
        if (!pre[k]) continue;
        const int d = view[k];
        std::vector<double> w;
        Mat vec;
        jacobi_eigh(gg[k], d, w, vec);
        std::vector<int> idx(static_cast<std::size_t>(d));
        std::iota(idx.begin(), idx.end(), 0);
        std::sort(idx.begin(), idx.end(), [&](int a, int b) {
          return w[static_cast<std::size_t>(a)] > w[static_cast<std::size_t>(b)];
        });
        q[k].assign(static_cast<std::size_t>(d * d), 0.0);
        for (int i = 0; i < d; ++i)
          for (int j = 0; j < d; ++j) q[k][i * d + j] = vec[i * d + idx[static_cast<std::size_t>(j)]];
      }
      return;
    }
    const Mat gp = project(g, false);
    ++s;
    Mat x(n);
    for (std::size_t i = 0; i < n; ++i) {
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gp[i];
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gp[i] * gp[i];
      x[i] = m[i] / (std::sqrt(v[i]) + o.eps);
    }
    double step_size = lr;
    if (o.correct_bias) step_size = lr * std::sqrt(1 - std::pow(o.beta2, s)) / (1 - std::pow(o.beta1, s));
    Mat ng = project(x, true);
    if (o.normalize_grads) {
      double ss = 0;
      for (double e : ng) ss += e * e;
      const double rms = std::sqrt(ss / static_cast<double>(n));
      for (auto& e : ng) e /= 1e-30 + rms;
    }
    for (std::size_t i = 0; i < n; ++i) p[i] -= step_size * ng[i];
    for (std::size_t i = 0; i < n; ++i) p[i] -= lr * wd * p[i];
    // update_preconditioner
    m = project(m, true);
    update_gg(g);
    if (s % o.precondition_frequency == 0)
      for (std::size_t k = 0; k < view.size(); ++k) {
        if (!pre[k]) continue;
        const int d = view[k];
        const Mat gq = matmul(gg[k], q[k], d, d, d);
        std::vector<double> est(static_cast<std::size_t>(d), 0.0);
        for (int i = 0; i < d; ++i)
          for (int j = 0; j < d; ++j) est[static_cast<std::size_t>(j)] += q[k][i * d + j] * gq[i * d + j];
        std::vector<int> idx(static_cast<std::size_t>(d));
        std::iota(idx.begin(), idx.end(), 0);
        std::sort(idx.begin(), idx.end(), [&](int a, int b) {
          return est[static_cast<std::size_t>(a)] > est[static_cast<std::size_t>(b)];
        });
        Mat vs = v, qs(q[k].size());
        for (int i = 0; i < d; ++i)
          for (int j = 0; j < d; ++j) qs[i * d + j] = q[k][i * d + idx[static_cast<std::size_t>(j)]];
        if (view.size() == 1)
          for (int i = 0; i < d; ++i)
            vs[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(idx[static_cast<std::size_t>(i)])];
        else if (k == 0)
          for (int i = 0; i < d; ++i)
            for (int c = 0; c < cols(); ++c)
              vs[i * cols() + c] = v[idx[static_cast<std::size_t>(i)] * cols() + c];
        else
          for (int r = 0; r < rows(); ++r)
            for (int j = 0; j < d; ++j) vs[r * cols() + j] = v[r * cols() + idx[static_cast<std::size_t>(j)]];
        v = vs;
        q[k] = gram_schmidt(matmul(gg[k], qs, d, d, d), d);
      }
    m = project(m, false);
  }
};

OptimizerConfig base_cfg(double wd, std::vector<std::string> roles) {
  OptimizerConfig c;
  c.name = "soap";
  c.lr = 3e-3;
  c.weight_decay = wd;
  c.decay_roles = std::move(roles);
  return c;
}

struct RefParam {
  std::string name;
  std::vector<int> view;
  std::vector<bool> pre;
};

// Runs SOAP and the fp64 reference on the same random gradients; returns max |difference| / max |parameter|.
double compare_with_reference(ParameterSet& ps, const std::vector<RefParam>& specs, const SoapOptions& opt,
                              const OptimizerConfig& cfg, int steps, double lr) {
  Rng init(3, 1);
  std::map<std::string, Mat> ref;
  std::vector<RefSoap> rs;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    Parameter& p = ps.get(specs[i].name);
    fill_normal(p.value, init);
    ref[p.name] = values(p.value);
    rs.emplace_back(opt, decays(cfg, p.role) ? cfg.weight_decay : 0.0, specs[i].view, specs[i].pre);
  }
  Soap soap(cfg, opt, ps);
  Rng grads(4, 2);
  for (int t = 1; t <= steps; ++t) {
    for (auto& p : ps.all()) fill_normal(p.grad, grads, 0.5);
    for (std::size_t i = 0; i < specs.size(); ++i) {
      Mat g;
      const Parameter& p = ps.get(specs[i].name);
      for (std::int64_t j = 0; j < p.grad.numel(); ++j) g.push_back(p.grad.item(j));
      rs[i].step(ref[specs[i].name], g, lr, t);
    }
    soap.step(ps, lr);
  }
  EXPECT_EQ(soap.report().failed_roots, 0);
  return max_rel_diff(ps, ref);
}

// ---- hand-checkable steps -------------------------------------------------------------------------------

// The eigenbases are compared through the updates, which do not depend on the sign of each eigenvector but
// do depend on the basis chosen inside a repeated eigenvalue; so every factor here is full rank from the
// first gradient on (square matrices, or a factor on the short side of a tall matrix).
TEST(Soap, MatchesFp64ReferenceWithBasisRefreshes) {
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {4, 4}, DType::F32);
  ps.add("block.00/g", ParamRole::Gain, {5}, DType::F32);  // precondition_1d = false: identity basis
  ps.add("embed/weight", ParamRole::Embedding, {6, 2}, DType::F32);
  SoapOptions o;
  o.precondition_frequency = 2;  // refreshes at SOAP steps 2, 4 and 6
  o.shampoo_beta = 0.9;
  o.max_precond_dim = 5;  // the embedding's 6 rows get no factor
  const std::vector<RefParam> specs = {{"block.00/w", {4, 4}, {true, true}},
                                       {"block.00/g", {5}, {false}},
                                       {"embed/weight", {6, 2}, {false, true}}};
  const double err = compare_with_reference(ps, specs, o, base_cfg(0.1, {"hidden"}), 7, 0.01);
  EXPECT_LT(err, 1e-5);
}

TEST(Soap, MatchesFp64ReferenceWithNormalizedGradsWithoutBiasCorrection) {
  ParameterSet ps;
  ps.add("block.00/u", ParamRole::Hidden, {3, 3}, DType::F32);
  SoapOptions o;
  o.normalize_grads = true;
  o.correct_bias = false;
  o.precondition_frequency = 3;
  o.beta1 = 0.9;
  o.beta2 = 0.99;
  const std::vector<RefParam> specs = {{"block.00/u", {3, 3}, {true, true}}};
  const double err = compare_with_reference(ps, specs, o, base_cfg(0.0, {}), 8, 0.01);
  EXPECT_LT(err, 1e-5);
}

TEST(Soap, MergedMatrixIsAPreconditionedVector) {
  // merge_dims turns a [3, 4] matrix into a vector of 12 with a 12 x 12 factor: exactly what a 1-D parameter
  // of 12 gets with precondition_1d.
  ParameterSet a, b;
  a.add("block.00/w", ParamRole::Hidden, {3, 4}, DType::F32);
  b.add("block.00/w", ParamRole::Hidden, {12}, DType::F32);
  SoapOptions oa, ob;
  oa.merge_dims = true;
  oa.max_precond_dim = 12;
  oa.precondition_frequency = 2;
  ob = oa;
  ob.merge_dims = false;
  ob.precondition_1d = true;
  Rng rng(9, 1);
  fill_normal(a.get("block.00/w").value, rng);
  b.get("block.00/w").value.copy_from(a.get("block.00/w").value.reshape({12}));
  Soap sa(base_cfg(0.1, {"hidden"}), oa, a), sb(base_cfg(0.1, {"hidden"}), ob, b);
  for (int t = 0; t < 6; ++t) {
    fill_normal(a.get("block.00/w").grad, rng);
    b.get("block.00/w").grad.copy_from(a.get("block.00/w").grad.reshape({12}));
    sa.step(a, 0.01);
    sb.step(b, 0.01);
  }
  for (std::int64_t i = 0; i < 12; ++i)
    EXPECT_EQ(a.get("block.00/w").value.item(i), b.get("block.00/w").value.item(i)) << i;
  bool found = false;
  for (const auto& s : sa.state())
    if (s.name == "block.00/w/GG_0") {
      found = true;
      EXPECT_EQ(s.tensor.shape(), (Shape{12, 12}));
    }
  EXPECT_TRUE(found);
}

TEST(Soap, MergeDimsAsTheReference) {
  EXPECT_EQ(soap_merge_dims({32, 32}, 10000), (Shape{1024}));
  EXPECT_EQ(soap_merge_dims({64, 256}, 10000), (Shape{64, 256}));
  EXPECT_EQ(soap_merge_dims({2, 3, 4}, 10), (Shape{6, 4}));
  EXPECT_EQ(soap_merge_dims({20000, 3}, 10000), (Shape{20000, 3}));
  EXPECT_EQ(soap_merge_dims({1, 7}, 10000), (Shape{7}));
}

// ---- invariants
// ---------------------------------------------------------------------------------------------

TEST(Soap, IdentityBasisIsAdam) {
  // max_precond_dim = 1: no dimension has a factor, so the basis is the identity and SOAP is Adam in the
  // form soap.py writes it: p -= lr sqrt(1 - b2^s) / (1 - b1^s) m / (sqrt(v) + eps), then p -= lr wd p,
  // with the first call skipped (s counts from the second call).
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {4, 3}, DType::F32);
  ps.add("block.00/g", ParamRole::Gain, {5}, DType::F32);
  SoapOptions o;
  o.max_precond_dim = 1;
  o.precondition_1d = true;
  const OptimizerConfig cfg = base_cfg(0.1, {"hidden"});
  Rng init(5, 1);
  std::map<std::string, Mat> p64, m, v;
  for (auto& p : ps.all()) {
    fill_normal(p.value, init);
    for (std::int64_t i = 0; i < p.value.numel(); ++i) p64[p.name].push_back(p.value.item(i));
    m[p.name].assign(p64[p.name].size(), 0.0);
    v[p.name].assign(p64[p.name].size(), 0.0);
  }
  Soap soap(cfg, o, ps);
  Rng grads(6, 2);
  const double lr = 0.02;
  for (int t = 1; t <= 8; ++t) {
    for (auto& p : ps.all()) fill_normal(p.grad, grads);
    soap.step(ps, lr);
    if (t == 1) continue;
    const int s = t - 1;
    for (auto& p : ps.all()) {
      const double wd = p.role == ParamRole::Hidden ? 0.1 : 0.0;
      for (std::size_t i = 0; i < p64[p.name].size(); ++i) {
        const double g = p.grad.item(static_cast<std::int64_t>(i));
        m[p.name][i] = 0.95 * m[p.name][i] + 0.05 * g;
        v[p.name][i] = 0.95 * v[p.name][i] + 0.05 * g * g;
        double& w = p64[p.name][i];
        w -= lr * std::sqrt(1 - std::pow(0.95, s)) / (1 - std::pow(0.95, s)) * m[p.name][i] /
             (std::sqrt(v[p.name][i]) + 1e-8);
        w -= lr * wd * w;
      }
    }
  }
  for (auto& p : ps.all())
    for (std::int64_t i = 0; i < p.value.numel(); ++i)
      EXPECT_NEAR(p.value.item(i), p64[p.name][static_cast<std::size_t>(i)],
                  1e-6 * (1 + std::abs(p64[p.name][static_cast<std::size_t>(i)])))
          << p.name << "[" << i << "]";
}

TEST(Soap, FirstCallOnlyInitialises) {
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {4, 3}, DType::F32);
  ps.add("block.00/g", ParamRole::Gain, {5}, DType::F32);
  Rng rng(7, 1);
  for (auto& p : ps.all()) {
    fill_normal(p.value, rng);
    fill_normal(p.grad, rng);
  }
  std::vector<Tensor> before;
  for (auto& p : ps.all()) before.push_back(p.value.clone());
  Soap soap(base_cfg(0.1, {"hidden", "gain"}), SoapOptions{}, ps);
  soap.step(ps, 0.01);
  std::size_t k = 0;
  for (auto& p : ps.all()) {
    for (std::int64_t i = 0; i < p.value.numel(); ++i)
      EXPECT_EQ(p.value.item(i), before[k].item(i)) << p.name;
    ++k;
  }
  // The basis is set (orthonormal), the moments are still zero.
  for (const auto& s : soap.state()) {
    if (s.name == "block.00/w/Q_0") {
      double err = 0;
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          double d = 0;
          for (int r = 0; r < 4; ++r) d += s.tensor.item(r * 4 + i) * s.tensor.item(r * 4 + j);
          err = std::max(err, std::abs(d - (i == j ? 1.0 : 0.0)));
        }
      EXPECT_LT(err, 1e-5);
    }
    if (s.name.find("exp_avg") != std::string::npos) {
      for (std::int64_t i = 0; i < s.tensor.numel(); ++i) EXPECT_EQ(s.tensor.item(i), 0.0) << s.name;
    }
  }
  soap.step(ps, 0.01);
  EXPECT_NE(ps.get("block.00/w").value.item(0), before[0].item(0));
}

TEST(Soap, EquivariantUnderOrthogonalRotations) {
  // With G' = U G V^T for orthogonal U, V (and W' = U W V^T), the eigenbases rotate with the gradients
  // and SOAP's update rotates the same way: W'_t = U W_t V^T at every step.
  const int m = 5, n = 4;
  Rng rng(8, 1);
  Mat u(static_cast<std::size_t>(m * m)), vv(static_cast<std::size_t>(n * n));
  for (auto& x : u) x = rng.normal();
  for (auto& x : vv) x = rng.normal();
  u = gram_schmidt(u, m);
  vv = gram_schmidt(vv, n);
  auto rotate = [&](const Tensor& t) {
    Mat x;
    for (std::int64_t i = 0; i < t.numel(); ++i) x.push_back(t.item(i));
    return matmul(matmul(u, x, m, m, n), vv, m, n, n, false, true);
  };
  ParameterSet a, b;
  a.add("block.00/w", ParamRole::Hidden, {m, n}, DType::F32);
  b.add("block.00/w", ParamRole::Hidden, {m, n}, DType::F32);
  Parameter& pa = a.get("block.00/w");
  Parameter& pb = b.get("block.00/w");
  fill_normal(pa.value, rng);
  Mat r = rotate(pa.value);
  for (int i = 0; i < m * n; ++i)
    pb.value.data<float>()[i] = static_cast<float>(r[static_cast<std::size_t>(i)]);
  SoapOptions o;
  o.precondition_frequency = 2;
  Soap sa(base_cfg(0.1, {"hidden"}), o, a), sb(base_cfg(0.1, {"hidden"}), o, b);
  for (int t = 1; t <= 6; ++t) {
    fill_normal(pa.grad, rng);
    r = rotate(pa.grad);
    for (int i = 0; i < m * n; ++i)
      pb.grad.data<float>()[i] = static_cast<float>(r[static_cast<std::size_t>(i)]);
    sa.step(a, 0.05);
    sb.step(b, 0.05);
  }
  r = rotate(pa.value);
  double err = 0, scale = 0;
  for (int i = 0; i < m * n; ++i) {
    err = std::max(err, std::abs(pb.value.item(i) - r[static_cast<std::size_t>(i)]));
    scale = std::max(scale, std::abs(r[static_cast<std::size_t>(i)]));
  }
  EXPECT_LT(err / scale, 1e-4);
}

TEST(Soap, ReportsStateBytesAndRoles) {
  ParameterSet ps;
  ps.add("block.00/w", ParamRole::Hidden, {6, 4}, DType::F32);
  ps.add("block.00/g", ParamRole::Gain, {4}, DType::F32);
  Soap soap(base_cfg(0.0, {}), SoapOptions{}, ps);
  std::vector<std::string> names;
  for (const auto& s : soap.state()) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"block.00/w/exp_avg", "block.00/w/exp_avg_sq", "block.00/w/GG_0",
                                             "block.00/w/Q_0", "block.00/w/GG_1", "block.00/w/Q_1",
                                             "block.00/g/exp_avg", "block.00/g/exp_avg_sq"}));
  EXPECT_EQ(soap.report().state_bytes, 4 * (2 * 24 + 2 * 36 + 2 * 16 + 2 * 4));
  EXPECT_EQ(soap.report().balance, 1.0);
  ParameterSet p64;
  p64.add("block.00/w", ParamRole::Hidden, {3, 2}, DType::F64);
  EXPECT_THROW(Soap(base_cfg(0.0, {}), SoapOptions{}, p64), Error);
}

// ---- config --------------------------------------------------------------------------------------------

TEST(Soap, ConfigKeysDefaultsAndErrors) {
  static const Schema s = [] {
    Schema x;
    add_soap_keys(x);
    return x;
  }();
  const SoapOptions d = soap_options(Config::defaults(s));
  const SoapOptions want;
  EXPECT_EQ(d.beta1, want.beta1);
  EXPECT_EQ(d.beta2, want.beta2);
  EXPECT_EQ(d.shampoo_beta, want.shampoo_beta);
  EXPECT_EQ(d.eps, want.eps);
  EXPECT_EQ(d.precondition_frequency, want.precondition_frequency);
  EXPECT_EQ(d.max_precond_dim, want.max_precond_dim);
  EXPECT_EQ(d.merge_dims, want.merge_dims);
  EXPECT_EQ(d.precondition_1d, want.precondition_1d);
  EXPECT_EQ(d.normalize_grads, want.normalize_grads);
  EXPECT_EQ(d.correct_bias, want.correct_bias);
  // The reference's values (SOAP.__init__), independently of the struct.
  EXPECT_EQ(want.beta1, 0.95);
  EXPECT_EQ(want.beta2, 0.95);
  EXPECT_EQ(want.shampoo_beta, -1.0);
  EXPECT_EQ(want.eps, 1e-8);
  EXPECT_EQ(want.precondition_frequency, 10);
  EXPECT_EQ(want.max_precond_dim, 10000);
  EXPECT_FALSE(want.merge_dims);
  EXPECT_FALSE(want.precondition_1d);
  const SoapOptions o = soap_options(Config::from_toml_string(
      s, "[optimizer.soap]\nbeta2 = 0.99\nprecondition_1d = true\nmax_precond_dim = 512\n", "t.toml"));
  EXPECT_EQ(o.beta2, 0.99);
  EXPECT_TRUE(o.precondition_1d);
  EXPECT_EQ(o.max_precond_dim, 512);
  expect_rejected(s, "soap",
                  {"beta1 = 1.0", "eps = 0.0", "precondition_frequency = 0", "max_precond_dim = 0",
                   "shampoo_beta = 1.0", "merge_dim = true"});
  expect_docs_cite(s, "nikhilvyas/SOAP");
}

TEST(Soap, ShippedTomlHasEveryKeyAtItsDefault) {
  const Config c = load_shipped_optimizer_toml("soap");
  EXPECT_EQ(c.get_float("optimizer.lr"), 3e-3);  // nikhilvyas/SOAP SOAP(lr=3e-3)
  expect_every_key_set_at_default(c, "soap");
}

// ---- training ------------------------------------------------------------------------------------------

TEST(Soap, TrainsTinyModelOnPermutationTask) {
  Olmo2 model(tiny_model());
  model.init(5);
  Soap soap(base_cfg(0.01, {"hidden"}), SoapOptions{}, model.params());  // reference defaults
  const double loss = train_tiny(soap, model, 120, 0.01);
  std::printf("soap: tiny model loss after 120 steps %.4f (ln 64 = %.4f)\n", loss, std::log(64.0));
  EXPECT_LT(loss, 0.5);
  EXPECT_EQ(soap.report().failed_roots, 0);
}

}  // namespace
}  // namespace quopt
