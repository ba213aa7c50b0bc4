// Matrix functions (optim/matrix_functions.hpp) against matrices with a known spectral structure built in
// the test: A = U diag(d) U^T with U orthonormalised by Gram-Schmidt here (not LAPACK).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "optim/matrix_functions.hpp"
#include "support/dense_reference.hpp"

namespace quopt {
namespace {

using testing::identity;
using testing::Mat;  // row-major, n x n unless stated
using testing::matmul;
using testing::to_tensor;
using testing::values;

Mat random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  Rng rng(seed, 7);
  Mat m(static_cast<std::size_t>(rows * cols));
  for (auto& x : m) x = rng.normal();
  return m;
}

// Columns of a random n x n matrix orthonormalised by modified Gram-Schmidt.
Mat random_orthogonal(std::int64_t n, std::uint64_t seed) {
  Mat a = random_matrix(n, n, seed);
  for (std::int64_t j = 0; j < n; ++j) {
    for (std::int64_t k = 0; k < j; ++k) {
      double dot = 0;
      for (std::int64_t i = 0; i < n; ++i) dot += a[i * n + j] * a[i * n + k];
      for (std::int64_t i = 0; i < n; ++i) a[i * n + j] -= dot * a[i * n + k];
    }
    double nrm = 0;
    for (std::int64_t i = 0; i < n; ++i) nrm += a[i * n + j] * a[i * n + j];
    nrm = std::sqrt(nrm);
    for (std::int64_t i = 0; i < n; ++i) a[i * n + j] /= nrm;
  }
  return a;
}

// U diag(f(d)) U^T
template <class F>
Mat spectral(const Mat& u, const std::vector<double>& d, std::int64_t n, F f) {
  Mat out(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < n; ++k)
        s += u[i * n + k] * f(d[static_cast<std::size_t>(k)]) * u[j * n + k];
      out[static_cast<std::size_t>(i * n + j)] = s;
    }
  return out;
}

double max_abs_diff(const Mat& a, const Mat& b) {
  EXPECT_EQ(a.size(), b.size());
  double e = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) e = std::max(e, std::abs(a[i] - b[i]));
  return e;
}

double tol(DType dt, double f32, double f64) {
  return dt == DType::F32 ? f32 : f64;
}

class MatrixFunctions : public ::testing::TestWithParam<DType> {};

TEST_P(MatrixFunctions, EighReconstructsAndFindsTheSpectrum) {
  const DType dt = GetParam();
  const std::int64_t n = 9;
  const Mat u = random_orthogonal(n, 1);
  std::vector<double> d = {3.0, -1.5, 0.25, 7.0, 1.0, 2.0, -0.5, 4.5, 0.0};
  const Mat a = spectral(u, d, n, [](double x) { return x; });
  const EighResult e = eigh(to_tensor(a, {n, n}, dt));
  ASSERT_TRUE(e.ok);
  EXPECT_FALSE(e.used_fp64);
  EXPECT_EQ(e.eigenvalues.dtype(), dt);
  std::sort(d.begin(), d.end());
  EXPECT_LT(max_abs_diff(values(e.eigenvalues), d), tol(dt, 1e-5, 1e-12));  // ascending, as LAPACK
  const Mat q = values(e.eigenvectors);
  const Mat w = values(e.eigenvalues);
  // Q diag(w) Q^T == A and Q^T Q == I.
  Mat rec(static_cast<std::size_t>(n * n), 0.0), qtq(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t k = 0; k < n; ++k) {
        rec[i * n + j] += q[i * n + k] * w[static_cast<std::size_t>(k)] * q[j * n + k];
        qtq[i * n + j] += q[k * n + i] * q[k * n + j];
      }
  EXPECT_LT(max_abs_diff(rec, a), tol(dt, 2e-5, 1e-12));
  EXPECT_LT(max_abs_diff(qtq, identity(n)), tol(dt, 1e-5, 1e-13));
}

TEST_P(MatrixFunctions, QrIsOrthonormalTimesUpperTriangular) {
  const DType dt = GetParam();
  const std::int64_t m = 7, n = 4;
  const Mat a = random_matrix(m, n, 2);
  const QrResult r = qr(to_tensor(a, {m, n}, dt));
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.q.shape(), (Shape{m, n}));
  ASSERT_EQ(r.r.shape(), (Shape{n, n}));
  const Mat q = values(r.q), rr = values(r.r);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < i; ++j) EXPECT_EQ(rr[i * n + j], 0.0) << "R(" << i << "," << j << ")";
  Mat qtq(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t k = 0; k < m; ++k) qtq[i * n + j] += q[k * n + i] * q[k * n + j];
  EXPECT_LT(max_abs_diff(qtq, identity(n)), tol(dt, 1e-6, 1e-14));
  EXPECT_LT(max_abs_diff(matmul(q, rr, m, n, n), a), tol(dt, 1e-5, 1e-13));
}

TEST_P(MatrixFunctions, CholeskyBothTrianglesAndNotPositiveDefinite) {
  const DType dt = GetParam();
  const std::int64_t n = 6;
  const Mat u = random_orthogonal(n, 3);
  const Mat a = spectral(u, {1, 2, 3, 4, 5, 6}, n, [](double x) { return x; });
  for (bool upper : {true, false}) {
    Tensor t = to_tensor(a, {n, n}, dt);
    ASSERT_EQ(cholesky(t, upper), 0);
    const Mat c = values(t);
    Mat ct(static_cast<std::size_t>(n * n));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        ct[j * n + i] = c[i * n + j];
        if (upper ? j < i : j > i) {
          EXPECT_EQ(c[i * n + j], 0.0);
        }
      }
    const Mat rec = upper ? matmul(ct, c, n, n, n) : matmul(c, ct, n, n, n);
    EXPECT_LT(max_abs_diff(rec, a), tol(dt, 2e-5, 1e-12)) << "upper=" << upper;
  }
  Tensor bad = to_tensor(spectral(u, {1, 2, -3, 4, 5, 6}, n, [](double x) { return x; }), {n, n}, dt);
  EXPECT_GT(cholesky(bad, true), 0);
}

TEST_P(MatrixFunctions, TriangularSolveAllVariants) {
  const DType dt = GetParam();
  const std::int64_t n = 5, r = 3;
  Mat tri = random_matrix(n, n, 4);
  for (std::int64_t i = 0; i < n; ++i) tri[i * n + i] = 3.0 + std::abs(tri[i * n + i]);  // well conditioned
  for (bool upper : {true, false})
    for (bool trans : {false, true})
      for (bool unit : {false, true})
        for (bool left : {true, false}) {
          // The triangular matrix actually used: the named triangle (diagonal 1 when unit).
          Mat t(static_cast<std::size_t>(n * n), 0.0);
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t j = 0; j < n; ++j)
              if (i == j)
                t[i * n + j] = unit ? 1.0 : tri[i * n + j];
              else if (upper ? j > i : j < i)
                t[i * n + j] = tri[i * n + j];
          Mat op = t;
          if (trans)
            for (std::int64_t i = 0; i < n; ++i)
              for (std::int64_t j = 0; j < n; ++j) op[i * n + j] = t[j * n + i];
          const Shape bs = left ? Shape{n, r} : Shape{r, n};
          const Mat b = random_matrix(bs[0], bs[1], 5);
          Tensor x = to_tensor(b, bs, dt);
          triangular_solve(to_tensor(tri, {n, n}, dt), x, left, upper, trans, unit, 2.0);
          const Mat xs = values(x);
          const Mat lhs = left ? matmul(op, xs, n, n, r) : matmul(xs, op, r, n, n);
          Mat rhs = b;
          for (auto& v : rhs) v *= 2.0;
          EXPECT_LT(max_abs_diff(lhs, rhs), tol(dt, 1e-5, 1e-12))
              << "upper=" << upper << " trans=" << trans << " unit=" << unit << " left=" << left;
        }
  Tensor b = to_tensor(random_matrix(4, r, 6), {4, r}, dt);
  EXPECT_THROW(triangular_solve(to_tensor(tri, {n, n}, dt), b, true, true, false, false), Error);
}

TEST_P(MatrixFunctions, InverseRootEigenIsTheInverseRoot) {
  const DType dt = GetParam();
  const std::int64_t n = 8;
  const Mat u = random_orthogonal(n, 7);
  const std::vector<double> d = {0.5, 1.0, 2.0, 3.0, 5.0, 0.1, 0.7, 1.5};
  const Mat a = spectral(u, d, n, [](double x) { return x; });
  const double eps = 1e-3;
  for (double p : {4.0, 2.0}) {
    const RootResult r = inverse_root_eigen(to_tensor(a, {n, n}, dt), p, eps);
    ASSERT_TRUE(r.ok) << r.message;
    const Mat x = values(r.root);
    const Mat want = spectral(u, d, n, [&](double v) { return std::pow(v + eps, -1.0 / p); });
    EXPECT_LT(max_abs_diff(x, want), tol(dt, 2e-5, 1e-12)) << "p=" << p;
    // X^p (A + eps I) == I
    Mat xp = identity(n);
    for (int k = 0; k < static_cast<int>(p); ++k) xp = matmul(xp, x, n, n, n);
    Mat ridge = a;
    for (std::int64_t i = 0; i < n; ++i) ridge[i * n + i] += eps;
    EXPECT_LT(max_abs_diff(matmul(xp, ridge, n, n, n), identity(n)), tol(dt, 1e-4, 1e-11)) << "p=" << p;
  }
}

TEST_P(MatrixFunctions, InverseRootEigenShiftsAnIndefiniteSpectrum) {
  // The reference's PerturbationConfig: if min eigenvalue of A + eps I is < eps, the spectrum is shifted
  // so that it becomes eps: L_i -> (d_i + eps) - (d_min + eps) + eps = d_i - d_min + eps.
  const DType dt = GetParam();
  const std::int64_t n = 5;
  const Mat u = random_orthogonal(n, 8);
  const std::vector<double> d = {-0.5, 1.0, 2.0, 0.0, 3.0};
  const double eps = 0.01;
  const RootResult r =
      inverse_root_eigen(to_tensor(spectral(u, d, n, [](double x) { return x; }), {n, n}, dt), 2.0, eps);
  ASSERT_TRUE(r.ok);
  const Mat want = spectral(u, d, n, [&](double v) { return std::pow(v + 0.5 + eps, -0.5); });
  EXPECT_LT(max_abs_diff(values(r.root), want), tol(dt, 1e-4, 1e-10));
}

TEST_P(MatrixFunctions, InverseRootNewtonMatchesTheEigenMethod) {
  const DType dt = GetParam();
  const std::int64_t n = 6;
  const Mat u = random_orthogonal(n, 9);
  const std::vector<double> d = {0.5, 1.0, 2.0, 3.0, 4.0, 0.8};
  const Mat a = spectral(u, d, n, [](double x) { return x; });
  for (int p : {4, 2}) {
    const RootResult r =
        inverse_root_newton(to_tensor(a, {n, n}, dt), p, 1e-6, 100, dt == DType::F32 ? 1e-5 : 1e-12);
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_TRUE(r.converged);
    EXPECT_GT(r.iterations, 0);
    const Mat want = spectral(u, d, n, [&](double v) { return std::pow(v + 1e-6, -1.0 / p); });
    EXPECT_LT(max_abs_diff(values(r.root), want), tol(dt, 1e-4, 1e-10)) << "p=" << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MatrixFunctions, ::testing::Values(DType::F32, DType::F64),
                         [](const ::testing::TestParamInfo<DType>& p) {
                           return std::string(dtype_name(p.param));
                         });

TEST(MatrixFunctionsFailures, F32EighFailureIsRetriedInFp64) {
  const std::int64_t n = 4;
  const Mat u = random_orthogonal(n, 10);
  const std::vector<double> d = {1.0, 2.0, 3.0, 4.0};
  const Tensor a = to_tensor(spectral(u, d, n, [](double x) { return x; }), {n, n}, DType::F32);
  detail::fail_next_f32_eigh_for_testing(1);
  const EighResult e = eigh(a, true);
  ASSERT_TRUE(e.ok);
  EXPECT_TRUE(e.used_fp64);
  EXPECT_EQ(e.eigenvalues.dtype(), DType::F32);
  EXPECT_LT(max_abs_diff(values(e.eigenvalues), d), 1e-5);

  detail::fail_next_f32_eigh_for_testing(1);
  const EighResult no_retry = eigh(a, false);
  EXPECT_FALSE(no_retry.ok);

  detail::fail_next_f32_eigh_for_testing(1);
  const RootResult r = inverse_root_eigen(a, 4.0, 1e-6, true);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.used_fp64);
  detail::fail_next_f32_eigh_for_testing(0);
}

TEST(MatrixFunctionsFailures, NonFiniteInputFailsWithoutThrowing) {
  Tensor a = identity_matrix(3, DType::F32);
  a.data<float>()[4] = std::nanf("");
  EXPECT_FALSE(all_finite(a));
  EXPECT_FALSE(eigh(a).ok);
  const RootResult r = inverse_root_eigen(a, 4.0, 1e-12);
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.message.empty());
  EXPECT_FALSE(inverse_root_newton(a, 4, 1e-12).ok);
}

// LAPACK's documented minimum workspaces of ?syevd with eigenvectors, exactly, where a float cannot
// hold them (ssyevd's own workspace query answers in a float and rounded them down).
TEST(MatrixFunctionsEigh, SyevdWorkspaceIsExactWhereAFloatRoundsIt) {
  EXPECT_EQ(syevd_workspace(0).lwork, 1);
  EXPECT_EQ(syevd_workspace(1).liwork, 1);
  EXPECT_EQ(syevd_workspace(2).lwork, 1 + 12 + 8);
  EXPECT_EQ(syevd_workspace(2).liwork, 13);
  for (const std::int64_t n : {2897LL, 4096LL, 16384LL}) {
    const SyevdWorkspace w = syevd_workspace(n);
    EXPECT_EQ(w.lwork, 1 + 6 * n + 2 * n * n) << n;
    EXPECT_EQ(w.liwork, 3 + 5 * n) << n;
    EXPECT_LT(static_cast<std::int64_t>(static_cast<float>(w.lwork)), w.lwork) << n << ": a float holds it";
  }
  EXPECT_EQ(syevd_workspace(4096).lwork, 33579009);  // the case: ssyevd's query said 33579008
  EXPECT_THROW(syevd_workspace(-1), Error);
}

// A side just above the threshold: the f32 eigendecomposition succeeds on its own (no fp64 retry) and
// LAPACK prints nothing. Before the integer workspace ssyevd rejected LWORK (argument 8) here. A
// diagonal matrix keeps the reference trivial; the O(n^3) reduction still runs (a few seconds).
TEST(MatrixFunctionsEigh, F32EighAboveTheFloatWorkspaceThreshold) {
  const std::int64_t n = 2897;
  Tensor a = Tensor::zeros({n, n}, DType::F32);
  for (std::int64_t i = 0; i < n; ++i) a.data<float>()[i * n + i] = static_cast<float>((i * 7919) % n + 1);
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const EighResult e = eigh(a, false);
  const std::string out = ::testing::internal::GetCapturedStdout() + ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(e.ok) << "info " << e.info << ": " << e.message;
  EXPECT_FALSE(e.used_fp64);
  EXPECT_TRUE(e.message.empty()) << e.message;
  EXPECT_EQ(out, "");
  for (std::int64_t i = 0; i < n; i += 97) EXPECT_FLOAT_EQ(e.eigenvalues.data<float>()[i], float(i + 1)) << i;
}

TEST(MatrixFunctionsFailures, BadArgumentsThrow) {
  EXPECT_THROW(eigh(Tensor::zeros({2, 3})), Error);
  EXPECT_THROW(qr(Tensor::zeros({2, 3})), Error);
  EXPECT_THROW(inverse_root_eigen(identity_matrix(2), 0.0, 1e-12), Error);
  EXPECT_THROW(inverse_root_newton(identity_matrix(2), 0, 1e-12), Error);
  EXPECT_THROW(eigh(Tensor::zeros({2, 2}, DType::I32)), Error);
}

}  // namespace
}  // namespace quopt
