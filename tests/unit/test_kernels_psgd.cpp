// The PSGD-Kron primitives (kernels/psgd_ops.hpp) on the host against naive fp64 references: triangular
// products and solves from either side, diagonal scalings, Gram matrices, row/column sums of squares, the
// reductions and element updates, and their argument checks. (The factor updates, the norm bound and the
// clip are checked against kron_torch's formulas in test_optim_psgd.)
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"
#include "kernels/psgd_ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;

using Dense = std::vector<double>;

// Row-major naive helpers in long double.
Dense upper(const Tensor& f, std::int64_t n) {
  Dense u(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i; j < n; ++j) u[static_cast<std::size_t>(i * n + j)] = f.item(i * n + j);
  return u;
}
Dense product(const Dense& a, const Dense& b, std::int64_t m, std::int64_t k, std::int64_t n) {
  Dense c(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      long double s = 0.0L;
      for (std::int64_t l = 0; l < k; ++l)
        s += static_cast<long double>(a[static_cast<std::size_t>(i * k + l)]) *
             b[static_cast<std::size_t>(l * n + j)];
      c[static_cast<std::size_t>(i * n + j)] = static_cast<double>(s);
    }
  return c;
}
Dense transposed(const Dense& a, std::int64_t m, std::int64_t n) {
  Dense t;
  t.reserve(a.size());
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < m; ++i) t.push_back(a[static_cast<std::size_t>(i * n + j)]);
  return t;
}

class PsgdOpsTest : public ::testing::TestWithParam<DType> {};

TEST_P(PsgdOpsTest, TriangularApplyMultipliesAndSolvesFromEitherSide) {
  const DType dt = GetParam();
  const std::int64_t rows = 6, cols = 4;
  const Tensor x = randn({rows, cols}, 1, dt);
  const Dense xd = testing::values(x);
  for (int side : {0, 1}) {
    const std::int64_t k = side == 0 ? rows : cols;
    Tensor f = randn({k, k}, 2 + side, dt);
    kernels::scale(f, 0.2);
    kernels::add_diagonal(f, 1.5);  // well conditioned; the lower triangle holds values that must be ignored
    const Dense u = upper(f, k);
    for (bool trans : {false, true}) {
      const Dense op = trans ? transposed(u, k, k) : u;
      Tensor y = x.clone();
      kernels::triangular_apply(f, side, trans, false, y);
      const Dense want = side == 0 ? product(op, xd, k, k, cols) : product(xd, op, rows, k, cols);
      expect_close(cat("multiply side ", side, " trans ", trans), y, want, testing::tol_for(dt));
      // Solving undoes the product.
      kernels::triangular_apply(f, side, trans, true, y);
      expect_close(cat("solve side ", side, " trans ", trans), y, xd, 10 * testing::tol_for(dt));
    }
  }
}

TEST_P(PsgdOpsTest, DiagonalGramAndSumsOfSquares) {
  const DType dt = GetParam();
  const std::int64_t rows = 5, cols = 3;
  const Tensor x = randn({rows, cols}, 4, dt);
  const Dense xd = testing::values(x);
  for (int side : {0, 1}) {
    const std::int64_t k = side == 0 ? rows : cols;
    const Tensor d = randn({k}, 5 + side, dt);
    for (bool solve : {false, true}) {
      Tensor y = x.clone();
      kernels::diagonal_apply(d, side, solve, y);
      Dense want(xd);
      for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < cols; ++j) {
          const double s = d.item(side == 0 ? i : j);
          want[static_cast<std::size_t>(i * cols + j)] = solve
                                                             ? xd[static_cast<std::size_t>(i * cols + j)] / s
                                                             : xd[static_cast<std::size_t>(i * cols + j)] * s;
        }
      expect_close(cat("diagonal_apply side ", side, " solve ", solve), y, want, testing::tol_for(dt));
    }
    Tensor c = Tensor::empty({k, k}, dt), ss = Tensor::empty({k}, dt);
    kernels::gram(x, side == 1, c);
    const Dense xt = transposed(xd, rows, cols);
    const Dense want = side == 0 ? product(xd, xt, rows, cols, rows) : product(xt, xd, cols, rows, cols);
    expect_close(cat("gram side ", side), c, want, testing::tol_for(dt));
    kernels::sum_squares_axis(x, side, ss);
    Dense diag(static_cast<std::size_t>(k));
    for (std::int64_t i = 0; i < k; ++i)
      diag[static_cast<std::size_t>(i)] = want[static_cast<std::size_t>(i * k + i)];
    expect_close(cat("sum_squares_axis side ", side), ss, diag, testing::tol_for(dt));
  }
}

TEST_P(PsgdOpsTest, ReductionsAndElementUpdates) {
  const DType dt = GetParam();
  const Tensor x = randn({7, 3}, 7, dt), d = randn({7, 3}, 8, dt);
  double as = 0.0, mx = 0.0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    as += std::fabs(x.item(i));
    mx = std::max(mx, std::fabs(x.item(i)));
  }
  EXPECT_NEAR(kernels::abs_sum(x), as, 1e-12 * as);
  EXPECT_EQ(kernels::max_abs(x), mx);
  Tensor q = Tensor::empty({7, 3}, dt), w = x.clone();
  kernels::divide(x, 4.0, q);
  kernels::decayed_update(w, d, 0.5, 0.1);
  Dense wq(21), ww(21);
  for (std::int64_t i = 0; i < 21; ++i) {
    wq[static_cast<std::size_t>(i)] = x.item(i) / 4.0;
    ww[static_cast<std::size_t>(i)] = x.item(i) - 0.5 * (d.item(i) + 0.1 * x.item(i));
  }
  expect_close("divide", q, wq, testing::tol_for(dt));
  expect_close("decayed_update", w, ww, testing::tol_for(dt));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, PsgdOpsTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(PsgdOps, ArgumentsAreChecked) {
  Tensor x = Tensor::zeros({4, 3}, DType::F32);
  expect_error(
      [&] {
        kernels::triangular_apply(Tensor::zeros({3, 3}, DType::F32), 0, false, false, x);
      },
      {"triangular_apply", "'f'", "expected shape [4, 4]"});
  expect_error(
      [&] {
        kernels::triangular_apply(Tensor::zeros({4, 4}, DType::F32), 2, false, false, x);
      },
      {"triangular_apply", "side = 2"});
  expect_error([&] { kernels::diagonal_apply(Tensor::zeros({3}, DType::F64), 1, false, x); },
               {"diagonal_apply", "same dtype"});
  Tensor c = Tensor::zeros({3, 3}, DType::F32);
  expect_error([&] { kernels::gram(x, false, c); }, {"gram", "'c'", "expected shape [4, 4]"});
  expect_error([&] { kernels::divide(x, 0.0, x); }, {"divide", "division by zero"});
  Tensor q = Tensor::zeros({3}, DType::F32);
  expect_error([&] { kernels::psgd_diagonal_update(q, q, Tensor::zeros({3}, DType::F32), 0.1); },
               {"psgd_diagonal_update", "overlaps"});
}

}  // namespace
}  // namespace quopt
