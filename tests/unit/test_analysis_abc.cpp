// The model-independent ABC core (analysis/abc.hpp): the sums against a direct computation of a and b,
// a two-module toy network written out in fp64, chunk additivity, and the spectral ratio G1 against
// singular values from LAPACKE_dgesvd.
#include <gtest/gtest.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "analysis/abc.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"

namespace quopt {
namespace {

using Mat = std::vector<double>;  // row-major

Tensor to_tensor(const Mat& v, std::int64_t rows, std::int64_t cols, DType dt = DType::F64) {
  Tensor t = Tensor::empty({rows, cols}, DType::F64);
  std::copy(v.begin(), v.end(), t.data<double>());
  return dt == DType::F64 ? t : t.astype(dt);
}

Mat from_tensor(const Tensor& t) {
  const Tensor d = t.astype(DType::F64);
  return Mat(d.data<double>(), d.data<double>() + d.numel());
}

Mat random_mat(std::int64_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed, 7);
  Mat m(static_cast<std::size_t>(n));
  for (auto& x : m) x = scale * rng.normal();
  return m;
}

double dot(const Mat& a, const Mat& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

Mat sub(const Mat& a, const Mat& b) {
  Mat c(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) c[i] = a[i] - b[i];
  return c;
}

// y = x W^T for x [n, k], W [m, k].
Mat matmul_t(const Mat& x, const Mat& w, std::int64_t n, std::int64_t k, std::int64_t m) {
  Mat y(static_cast<std::size_t>(n * m), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < m; ++j) {
      double s = 0.0;
      for (std::int64_t l = 0; l < k; ++l) s += x[i * k + l] * w[j * k + l];
      y[i * m + j] = s;
    }
  return y;
}

// Rounds every entry to a multiple of step (a toy quantizer, deterministic).
Mat round_to(const Mat& x, double step) {
  Mat y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = std::round(x[i] / step) * step;
  return y;
}

Mat relu(Mat x) {
  for (auto& v : x) v = std::max(v, 0.0);
  return x;
}

TEST(AnalysisAbc, SumsMatchDirectComputationOfAAndB) {
  const std::int64_t n = 3000;  // more than one summation block
  const Mat qq = random_mat(n, 1), qh = random_mat(n, 2), fq = random_mat(n, 3), fh = random_mat(n, 4);
  AbcSums s;
  abc_accumulate(to_tensor(qq, 1, n), to_tensor(qh, 1, n), to_tensor(fq, 1, n), to_tensor(fh, 1, n), s);
  Mat a(n), b(n), dh(n);
  for (std::int64_t i = 0; i < n; ++i) {
    a[i] = 0.5 * ((qq[i] - qh[i]) + (fq[i] - fh[i]));
    b[i] = 0.5 * ((qq[i] - fq[i]) + (qh[i] - fh[i]));
    dh[i] = qq[i] - fh[i];
  }
  const double h2 = dot(fh, fh);
  EXPECT_NEAR(s.h2, h2, 1e-12 * h2);
  EXPECT_NEAR(s.dh2, dot(dh, dh), 1e-12 * dot(dh, dh));
  EXPECT_NEAR(s.a2, dot(a, a), 1e-12 * dot(a, a));
  EXPECT_NEAR(s.b2, dot(b, b), 1e-12 * dot(b, b));
  EXPECT_NEAR(s.ab, dot(a, b), 1e-12 * std::sqrt(dot(a, a) * dot(b, b)));
  const AbcTerms t = abc_terms(s, 0.25);
  EXPECT_NEAR(t.R, t.A + t.B + t.C, 1e-13 * (t.A + t.B + std::fabs(t.C)));
  EXPECT_DOUBLE_EQ(t.G, t.A / 0.25);
  EXPECT_TRUE(std::isnan(t.G1));
  EXPECT_TRUE(std::isnan(t.G2));
  // f32 inputs give the same sums up to the f32 rounding of the inputs.
  AbcSums s32;
  abc_accumulate(to_tensor(qq, 1, n, DType::F32), to_tensor(qh, 1, n, DType::F32),
                 to_tensor(fq, 1, n, DType::F32), to_tensor(fh, 1, n, DType::F32), s32);
  EXPECT_NEAR(s32.a2, s.a2, 1e-5 * s.a2);
  EXPECT_THROW(
      abc_accumulate(to_tensor(qq, 1, n), to_tensor(qh, 1, n), to_tensor(fq, 1, n), Tensor::zeros({2}), s),
      Error);
}

// Two modules, h1 = relu(x W1^T), h2 = h1 W2^T; the quantized network rounds its inputs to a grid and
// uses rounded weights. Everything written out plainly here in fp64.
struct Toy {
  static constexpr std::int64_t n = 6, d0 = 5, d1 = 7, d2 = 4;
  Mat w1 = random_mat(d1 * d0, 11, 0.5), w2 = random_mat(d2 * d1, 12, 0.5);
  Mat w1q = round_to(w1, 0.1), w2q = round_to(w2, 0.1);
  static constexpr double act_step = 0.125;

  Mat f1(const Mat& x) const { return relu(matmul_t(x, w1, n, d0, d1)); }
  Mat fq1(const Mat& x) const { return relu(matmul_t(round_to(x, act_step), w1q, n, d0, d1)); }
  Mat f2(const Mat& h) const { return matmul_t(h, w2, n, d1, d2); }
  Mat fq2(const Mat& h) const { return matmul_t(round_to(h, act_step), w2q, n, d1, d2); }

  std::vector<AbcModule> chain() const {
    auto wrap = [](std::int64_t in, std::int64_t out, auto fn) {
      return [in, out, fn](const Tensor& x) {
        EXPECT_EQ(x.numel(), n * in);
        return to_tensor(fn(from_tensor(x)), n, out);
      };
    };
    return {{"layer1",
             wrap(d0, d1, [this](const Mat& x) { return f1(x); }),
             wrap(d0, d1, [this](const Mat& x) { return fq1(x); }),
             {}},
            {"layer2",
             wrap(d1, d2, [this](const Mat& h) { return f2(h); }),
             wrap(d1, d2, [this](const Mat& h) { return fq2(h); }),
             {}}};
  }
};

TEST(AnalysisAbc, ToyTwoLayerNetworkMatchesDirectComputation) {
  const Toy toy;
  const Mat x = random_mat(Toy::n * Toy::d0, 13);
  const auto terms = abc_chain(toy.chain(), to_tensor(x, Toy::n, Toy::d0));
  ASSERT_EQ(terms.size(), 2u);

  // Module 1: both networks see the same x, so a = 0 and b = dh.
  const Mat h1 = toy.f1(x), hq1 = toy.fq1(x);
  const Mat dh1 = sub(hq1, h1);
  const double R1 = dot(dh1, dh1) / dot(h1, h1);
  ASSERT_GT(R1, 0.0);
  EXPECT_EQ(terms[0].A, 0.0);
  EXPECT_EQ(terms[0].C, 0.0);
  EXPECT_NEAR(terms[0].B, R1, 1e-12 * R1);
  EXPECT_NEAR(terms[0].R, R1, 1e-12 * R1);
  EXPECT_TRUE(std::isnan(terms[0].G));  // undefined for the first module

  // Module 2 from its definition.
  const Mat qq = toy.fq2(hq1), qh = toy.fq2(h1), fq = toy.f2(hq1), fh = toy.f2(h1);
  Mat a(fh.size()), b(fh.size());
  for (std::size_t i = 0; i < fh.size(); ++i) {
    a[i] = 0.5 * ((qq[i] - qh[i]) + (fq[i] - fh[i]));
    b[i] = 0.5 * ((qq[i] - fq[i]) + (qh[i] - fh[i]));
  }
  const double h2 = dot(fh, fh);
  const Mat dh2 = sub(qq, fh);
  const double A = dot(a, a) / h2, B = dot(b, b) / h2, C = 2.0 * dot(a, b) / h2, R = dot(dh2, dh2) / h2;
  EXPECT_NEAR(terms[1].A, A, 1e-12 * A);
  EXPECT_NEAR(terms[1].B, B, 1e-12 * B);
  EXPECT_NEAR(terms[1].C, C, 1e-12 * (A + B));
  EXPECT_NEAR(terms[1].R, R, 1e-12 * R);
  EXPECT_NEAR(terms[1].R, terms[1].A + terms[1].B + terms[1].C, 1e-13 * (A + B + std::fabs(C)));
  EXPECT_NEAR(terms[1].G, A / R1, 1e-12 * A / R1);
  // The second module is linear: a = dh1 (W2 + eps/2)^T without activation rounding; with it the
  // propagated part is still nonzero and the local part is not just the weight error.
  EXPECT_GT(A, 0.0);
  EXPECT_GT(B, 0.0);
}

// A module whose output carries its input beside its value (a residual past a branch): module 1 maps x
// to [x | relu(x W1^T)] with value() the branch part, module 2 maps [x | h] to x P^T + h W2^T. R of
// module 1 measures only the branch; module 2's R_in, and so its G, covers the whole state.
TEST(AnalysisAbc, ValueAndCarriedStateEnterROnlyThroughRIn) {
  const Toy toy;
  constexpr std::int64_t n = Toy::n, d0 = Toy::d0, d1 = Toy::d1, d2 = Toy::d2, w = d0 + d1;
  const Mat p = random_mat(d2 * d0, 21, 0.5), pq = round_to(p, 0.1);
  const Mat x = random_mat(n * d0, 22);
  auto join = [&](const Mat& a, const Mat& b) {  // [n, d0] | [n, d1] -> [n, w]
    Mat y(static_cast<std::size_t>(n * w));
    for (std::int64_t i = 0; i < n; ++i) {
      std::copy(a.begin() + i * d0, a.begin() + (i + 1) * d0, y.begin() + i * w);
      std::copy(b.begin() + i * d1, b.begin() + (i + 1) * d1, y.begin() + i * w + d0);
    }
    return y;
  };
  auto part = [&](const Mat& y, bool branch) {
    const std::int64_t off = branch ? d0 : 0, cols = branch ? d1 : d0;
    Mat out(static_cast<std::size_t>(n * cols));
    for (std::int64_t i = 0; i < n; ++i)
      std::copy(y.begin() + i * w + off, y.begin() + i * w + off + cols, out.begin() + i * cols);
    return out;
  };
  auto add = [](Mat a, const Mat& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  };
  auto m1 = [&](bool q) {
    return [&, q](const Tensor& t) {
      const Mat in = from_tensor(t);
      return to_tensor(join(in, q ? toy.fq1(in) : toy.f1(in)), n, w);
    };
  };
  auto m2 = [&](bool q) {
    return [&, q](const Tensor& t) {
      const Mat st = from_tensor(t), r = part(st, false), h = part(st, true);
      const Mat skip = matmul_t(q ? round_to(r, Toy::act_step) : r, q ? pq : p, n, d0, d2);
      return to_tensor(add(skip, q ? toy.fq2(h) : toy.f2(h)), n, d2);
    };
  };
  const std::vector<AbcModule> chain = {
      {"branch", m1(false), m1(true),
       [&](const Tensor& t) { return to_tensor(part(from_tensor(t), true), n, d1); }},
      {"merge", m2(false), m2(true), {}}};
  std::vector<AbcSums> sums;
  abc_chain_accumulate(chain, to_tensor(x, n, d0), sums);
  const auto terms = abc_chain_terms(sums);

  const Mat h1 = toy.f1(x), hq1 = toy.fq1(x);  // the branch: both networks read the same x
  const double R1 = dot(sub(hq1, h1), sub(hq1, h1)) / dot(h1, h1);
  EXPECT_NEAR(terms[0].R, R1, 1e-12 * R1);
  EXPECT_NEAR(terms[0].B, R1, 1e-12 * R1);
  const Mat s = join(x, h1), sq = join(x, hq1);  // the whole state module 2 reads
  const double R_in = dot(sub(sq, s), sub(sq, s)) / dot(s, s);
  ASSERT_LT(R_in, 0.9 * R1);  // the carried x is exact, so the whole state's error is smaller
  EXPECT_NEAR(sums[1].input.value(), R_in, 1e-12 * R_in);
  EXPECT_NEAR(terms[1].G, terms[1].A / R_in, 1e-12 * terms[1].G);
  EXPECT_NEAR(terms[1].R, terms[1].A + terms[1].B + terms[1].C, 1e-13 * (terms[1].A + terms[1].B));
  const Mat y = from_tensor(m2(false)(to_tensor(s, n, w)));
  const Mat yq = from_tensor(m2(true)(to_tensor(sq, n, w)));
  const double R2 = dot(sub(yq, y), sub(yq, y)) / dot(y, y);
  EXPECT_NEAR(terms[1].R, R2, 1e-12 * R2);
}

TEST(AnalysisAbc, HooksSeeTheFourEvaluationsInOrder) {
  const Toy toy;
  const Mat x = random_mat(Toy::n * Toy::d0, 14);
  std::vector<std::pair<std::int64_t, AbcEval>> seen;
  std::vector<std::int64_t> done;
  AbcHooks hooks;
  hooks.before_eval = [&](std::int64_t m, AbcEval e) { seen.emplace_back(m, e); };
  hooks.after_module = [&](std::int64_t m) { done.push_back(m); };
  std::vector<AbcSums> sums;
  abc_chain_accumulate(toy.chain(), to_tensor(x, Toy::n, Toy::d0), sums, hooks);
  const std::vector<AbcEval> order = {AbcEval::F_h, AbcEval::Fq_hq, AbcEval::F_hq, AbcEval::Fq_h};
  ASSERT_EQ(seen.size(), 8u);
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(seen[i].first, static_cast<std::int64_t>(i / 4));
    EXPECT_EQ(seen[i].second, order[i % 4]);
  }
  EXPECT_EQ(done, (std::vector<std::int64_t>{0, 1}));
}

TEST(AnalysisAbc, ChunksAddUp) {
  // The toy modules act row by row, so two chunks of rows accumulate the whole batch's sums.
  const Toy toy;
  const Mat x = random_mat(Toy::n * Toy::d0, 15);
  std::vector<AbcSums> whole, parts;
  abc_chain_accumulate(toy.chain(), to_tensor(x, Toy::n, Toy::d0), whole);
  // A chain whose modules take any number of rows: rebuild it for half batches.
  const std::int64_t half = Toy::n / 2;
  auto rows = [&](std::int64_t r0) {
    Mat y(x.begin() + r0 * Toy::d0, x.begin() + (r0 + half) * Toy::d0);
    y.resize(static_cast<std::size_t>(Toy::n * Toy::d0), 0.0);  // zero rows pad to the toy's batch
    return to_tensor(y, Toy::n, Toy::d0);
  };
  abc_chain_accumulate(toy.chain(), rows(0), parts);
  abc_chain_accumulate(toy.chain(), rows(half), parts);
  ASSERT_EQ(parts.size(), whole.size());
  for (std::size_t l = 0; l < whole.size(); ++l) {
    EXPECT_NEAR(parts[l].h2, whole[l].h2, 1e-12 * whole[l].h2);
    EXPECT_NEAR(parts[l].dh2, whole[l].dh2, 1e-12 * whole[l].dh2);
    EXPECT_NEAR(parts[l].a2, whole[l].a2, 1e-12 * (whole[l].a2 + whole[l].b2));
    EXPECT_NEAR(parts[l].ab, whole[l].ab, 1e-12 * (whole[l].a2 + whole[l].b2));
  }
}

TEST(AnalysisAbc, TermsEdgeCases) {
  const AbcTerms zero = abc_terms(AbcSums{}, 0.0);
  EXPECT_EQ(zero.R, 0.0);
  EXPECT_EQ(zero.A, 0.0);
  EXPECT_TRUE(std::isnan(zero.G));  // R_in = 0: no gain
  const AbcTerms bad = abc_terms(AbcSums{0.0, 1.0, 1.0, 0.0, 0.0, {}}, 0.5);
  EXPECT_TRUE(std::isnan(bad.R));  // an error relative to a zero output
  RelErrSums r;
  EXPECT_EQ(r.value(), 0.0);
  relerr_accumulate(to_tensor({1, 2}, 1, 2), to_tensor({1, 0}, 1, 2), r);
  EXPECT_DOUBLE_EQ(r.value(), 4.0);
}

// Singular values by LAPACKE_dgesvd (independent of the Gram-matrix route in abc.cpp).
double sigma_max(const Mat& w, std::int64_t m, std::int64_t n) {
  Mat a = w;
  std::vector<double> s(static_cast<std::size_t>(std::min(m, n))), superb(s.size() + 1);
  const lapack_int info =
      LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', static_cast<lapack_int>(m), static_cast<lapack_int>(n),
                     a.data(), static_cast<lapack_int>(n), s.data(), nullptr, 1, nullptr, 1, superb.data());
  EXPECT_EQ(info, 0);
  return s[0];
}

TEST(AnalysisAbc, SpectralRatioMatchesSvd) {
  for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{7, 5}, {5, 9}, {16, 16}, {1, 6}}) {
    const Mat w = random_mat(m * n, static_cast<std::uint64_t>(100 + m * n), 0.02);
    Mat wq = round_to(w, 0.01);  // a coarse grid: eps_W is large
    const Tensor tw = to_tensor(w, m, n, DType::F32), twq = to_tensor(wq, m, n, DType::F32);
    const Mat w32 = from_tensor(tw), wq32 = from_tensor(twq);
    Mat mid(w32.size());
    for (std::size_t i = 0; i < mid.size(); ++i) mid[i] = w32[i] + 0.5 * (wq32[i] - w32[i]);
    const double s_w = sigma_max(w32, m, n), s_mid = sigma_max(mid, m, n);
    EXPECT_NEAR(spectral_norm_sq(tw), s_w * s_w, 1e-12 * s_w * s_w) << m << "x" << n;
    const double expect = (s_mid / s_w) * (s_mid / s_w);
    EXPECT_NEAR(spectral_ratio(tw, twq), expect, 1e-12 * expect) << m << "x" << n;
    EXPECT_NE(expect, 1.0);
    EXPECT_EQ(spectral_ratio(tw, tw), 1.0);  // no weight error: exactly 1
  }
  EXPECT_TRUE(
      std::isnan(spectral_ratio(Tensor::zeros({3, 2}), to_tensor({1, 0, 0, 0, 0, 0}, 3, 2, DType::F32))));
  EXPECT_THROW(spectral_ratio(Tensor::zeros({3, 2}), Tensor::zeros({2, 3})), Error);
  AbcTerms t;
  t.G = 0.6;
  set_spectral_ratio(t, 1.5);
  EXPECT_DOUBLE_EQ(t.G1, 1.5);
  EXPECT_DOUBLE_EQ(t.G2, 0.4);
}

// G = H diag(lambda) H with the Householder reflector H = I - 2 v v^T / |v|^2 (orthogonal, symmetric).
Tensor psd_with_eigenvalues(const std::vector<double>& lambda, std::uint64_t seed) {
  const auto k = static_cast<std::int64_t>(lambda.size());
  const Mat v = random_mat(k, seed);
  const double vv = dot(v, v);
  Mat h(static_cast<std::size_t>(k * k));
  for (std::int64_t i = 0; i < k; ++i)
    for (std::int64_t j = 0; j < k; ++j) h[i * k + j] = (i == j ? 1.0 : 0.0) - 2.0 * v[i] * v[j] / vv;
  Tensor g = Tensor::empty({k, k}, DType::F64);
  for (std::int64_t i = 0; i < k; ++i)
    for (std::int64_t j = 0; j < k; ++j) {
      double s = 0.0;
      for (std::int64_t l = 0; l < k; ++l) s += h[i * k + l] * lambda[l] * h[j * k + l];
      g.data<double>()[i * k + j] = s;
    }
  return g;
}

TEST(AnalysisAbc, LanczosTopEigenvalue) {
  const std::int64_t k = 120;
  // A separated top eigenvalue converges long before k steps, to the stated tolerance.
  std::vector<double> lambda(k);
  Rng rng(3, 3);
  for (auto& l : lambda) l = 5.0 * rng.uniform();
  lambda[17] = 10.0;
  const TopEigen sep = top_eigenvalue_psd(psd_with_eigenvalues(lambda, 4));
  EXPECT_NEAR(sep.value, 10.0, 1e-11 * 10.0);
  EXPECT_LT(sep.iterations, k / 2);
  EXPECT_LE(sep.residual, kSpectralTol * sep.value);
  // A near-degenerate top pair (relative gap 1e-7): the value is still right to the tolerance.
  lambda[40] = 10.0 * (1.0 - 1e-7);
  const TopEigen close = top_eigenvalue_psd(psd_with_eigenvalues(lambda, 5));
  EXPECT_NEAR(close.value, 10.0, 1e-11 * 10.0);
  EXPECT_LE(close.iterations, k);
  // A multiple of the identity: the start vector is an eigenvector, one step is exact.
  const TopEigen id = top_eigenvalue_psd(psd_with_eigenvalues(std::vector<double>(9, 2.5), 6));
  EXPECT_NEAR(id.value, 2.5, 1e-14);
  EXPECT_EQ(id.iterations, 1);
  EXPECT_EQ(top_eigenvalue_psd(Tensor::zeros({4, 4}, DType::F64)).value, 0.0);
  EXPECT_THROW(top_eigenvalue_psd(Tensor::zeros({3, 4}, DType::F64)), Error);
  EXPECT_THROW(top_eigenvalue_psd(Tensor::zeros({3, 3}, DType::F32)), Error);
}

TEST(AnalysisAbc, SpectralNormOfGaussianMatrixMatchesSvd) {
  // The largest singular values of a Gaussian matrix crowd at the Marchenko-Pastur edge: a hard case
  // for an iterative method.
  const std::int64_t m = 260, n = 180;
  const Mat w = random_mat(m * n, 77);
  const double s = sigma_max(w, m, n);
  EXPECT_NEAR(spectral_norm_sq(to_tensor(w, m, n)), s * s, 1e-11 * s * s);
  Mat wt(w.size());  // the transpose: the Gram matrix of the other side
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) wt[j * m + i] = w[i * n + j];
  EXPECT_NEAR(spectral_norm_sq(to_tensor(wt, n, m)), s * s, 1e-11 * s * s);
}

}  // namespace
}  // namespace quopt
