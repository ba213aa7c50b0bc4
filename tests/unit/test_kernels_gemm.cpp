// matmul / matmul_batched against naive triple loops, and the GEMM statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;
using testing::tol_for;

// Element (i, j) of op(x) for a 2-D row-major matrix x stored with `cols` columns, at offset `off`.
double op_at(const Tensor& x, std::int64_t off, std::int64_t cols, bool trans, std::int64_t i,
             std::int64_t j) {
  return trans ? x.item(off + j * cols + i) : x.item(off + i * cols + j);
}

// Reference alpha * op(a) @ op(b) + beta * c0 for batch entry `bi` (offsets into 3-D tensors).
std::vector<double> naive(const Tensor& a, bool ta, const Tensor& b, bool tb, const Tensor& c0, double alpha,
                          double beta, std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t batch) {
  std::vector<double> out(static_cast<std::size_t>(batch * m * n));
  const std::int64_t acols = a.dim(-1), bcols = b.dim(-1);
  for (std::int64_t bi = 0; bi < batch; ++bi) {
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (std::int64_t p = 0; p < k; ++p) {
          s += op_at(a, bi * m * k, acols, ta, i, p) * op_at(b, bi * k * n, bcols, tb, p, j);
        }
        const std::int64_t idx = bi * m * n + i * n + j;
        out[static_cast<std::size_t>(idx)] = alpha * s + beta * c0.item(idx);
      }
    }
  }
  return out;
}

class MatmulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulTest, AllTransposeCombinationsWithAlphaBeta) {
  const DType dt = GetParam();
  const std::int64_t m = 7, n = 5, k = 11;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = randn(ta ? Shape{k, m} : Shape{m, k}, 1 + static_cast<std::uint64_t>(2 * ta + tb), dt);
      Tensor b = randn(tb ? Shape{n, k} : Shape{k, n}, 10 + static_cast<std::uint64_t>(2 * ta + tb), dt);
      Tensor c = randn({m, n}, 20, dt);
      const Tensor c0 = c.clone();
      for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{1.5, -0.5}, std::pair{-0.25, 1.0}}) {
        c.copy_from(c0);
        kernels::matmul(a, ta != 0, b, tb != 0, c, alpha, beta);
        expect_close(cat("matmul ta=", ta, " tb=", tb, " alpha=", alpha, " beta=", beta), c,
                     naive(a, ta != 0, b, tb != 0, c0, alpha, beta, m, n, k, 1), tol_for(dt));
      }
    }
  }
}

TEST_P(MatmulTest, BetaZeroOverwritesNaN) {
  const DType dt = GetParam();
  Tensor a = randn({3, 4}, 2, dt), b = randn({4, 2}, 3, dt);
  Tensor c = Tensor::empty({3, 2}, dt);
  kernels::fill(c, std::numeric_limits<double>::quiet_NaN());
  kernels::matmul(a, false, b, false, c);
  const Tensor zero = Tensor::zeros({3, 2}, dt);
  expect_close("beta=0 with NaN in c", c, naive(a, false, b, false, zero, 1.0, 0.0, 3, 2, 4, 1), tol_for(dt));
}

TEST_P(MatmulTest, EmptyInnerDimensionScalesC) {
  const DType dt = GetParam();
  Tensor a = Tensor::empty({3, 0}, dt), b = Tensor::empty({0, 4}, dt);
  Tensor c = randn({3, 4}, 5, dt);
  const std::vector<double> c0 = testing::values(c);
  kernels::matmul(a, false, b, false, c, 1.0, 0.5);
  std::vector<double> want = c0;
  for (double& v : want) v *= 0.5;
  expect_close("k = 0", c, want, tol_for(dt));
}

TEST_P(MatmulTest, BatchedMatchesPerBatchReference) {
  const DType dt = GetParam();
  const std::int64_t batch = 3, m = 4, n = 6, k = 5;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = randn(ta ? Shape{batch, k, m} : Shape{batch, m, k}, 30 + static_cast<std::uint64_t>(ta), dt);
      Tensor b = randn(tb ? Shape{batch, n, k} : Shape{batch, k, n}, 40 + static_cast<std::uint64_t>(tb), dt);
      Tensor c = randn({batch, m, n}, 50, dt);
      const Tensor c0 = c.clone();
      kernels::matmul_batched(a, ta != 0, b, tb != 0, c, 0.75, 0.25);
      expect_close(cat("matmul_batched ta=", ta, " tb=", tb), c,
                   naive(a, ta != 0, b, tb != 0, c0, 0.75, 0.25, m, n, k, batch), tol_for(dt));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MatmulTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Matmul, StatsCountFlopsOnlyWhenEnabled) {
  Tensor a = randn({8, 3}, 1), b = randn({3, 5}, 2), c = Tensor::empty({8, 5}, DType::F64);
  Tensor ab = randn({2, 8, 3}, 3), bb = randn({2, 3, 5}, 4), cb = Tensor::empty({2, 8, 5}, DType::F64);
  kernels::gemm_stats_enable(false);
  kernels::gemm_stats_reset();
  kernels::matmul(a, false, b, false, c);
  EXPECT_EQ(kernels::gemm_stats().calls, 0);
  EXPECT_EQ(kernels::gemm_stats().flops, 0.0);

  kernels::gemm_stats_enable(true);
  kernels::matmul(a, false, b, false, c);
  kernels::matmul_batched(ab, false, bb, false, cb);
  const kernels::GemmStats s = kernels::gemm_stats();
  kernels::gemm_stats_enable(false);
  EXPECT_EQ(s.calls, 2);
  EXPECT_DOUBLE_EQ(s.flops, 2.0 * 8 * 5 * 3 + 2.0 * 2 * 8 * 5 * 3);
  EXPECT_GE(s.seconds, 0.0);
  kernels::gemm_stats_reset();
  EXPECT_EQ(kernels::gemm_stats().calls, 0);
  EXPECT_EQ(kernels::gemm_stats().seconds, 0.0);
}

TEST(Matmul, ShapeDtypeAndAliasErrors) {
  Tensor a = randn({4, 3}, 1), b = randn({3, 5}, 2), c = Tensor::empty({4, 5}, DType::F64);
  expect_error([&] { kernels::matmul(a, true, b, false, c); }, {"matmul", "inner dimensions", a.describe()});
  Tensor c_bad = Tensor::empty({5, 4}, DType::F64);
  expect_error([&] { kernels::matmul(a, false, b, false, c_bad); }, {"matmul", c_bad.describe(), "[4, 5]"});
  Tensor b32 = randn({3, 5}, 2, DType::F32);
  expect_error([&] { kernels::matmul(a, false, b32, false, c); }, {"matmul", "same dtype", b32.describe()});
  Tensor a3 = randn({1, 4, 3}, 1);
  expect_error([&] { kernels::matmul(a3, false, b, false, c); }, {"matmul", "2-D"});
  Tensor sq = randn({4, 4}, 6);
  expect_error([&] { kernels::matmul(sq, false, sq, false, sq); }, {"matmul", "overlaps"});
  Tensor ai = Tensor::zeros({4, 3}, DType::I32);
  expect_error([&] { kernels::matmul(ai, false, b, false, c); }, {"matmul", "f32 or f64"});
  Tensor ab = randn({2, 4, 3}, 1), bb = randn({3, 3, 5}, 2), cb = Tensor::empty({2, 4, 5}, DType::F64);
  expect_error([&] { kernels::matmul_batched(ab, false, bb, false, cb); }, {"matmul_batched", "batch sizes"});
}

}  // namespace
}  // namespace quopt
