// rmsnorm_forward / rmsnorm_backward against a naive loop and finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;
using testing::tol_for;

class RmsNormTest : public ::testing::TestWithParam<DType> {};

TEST_P(RmsNormTest, ForwardMatchesNaive) {
  const DType dt = GetParam();
  const std::int64_t n = 6, c = 37;
  const double eps = 1e-5;
  Tensor x = randn({2, 3, c}, 1, dt, 2.0);  // [..., C] with leading dims flattened to N = 6
  Tensor w = randn({c}, 2, dt);
  Tensor y = Tensor::empty({2, 3, c}, dt), rstd = Tensor::empty({n}, dt);
  kernels::rmsnorm_forward(x, w, eps, y, rstd);
  std::vector<double> want_y(static_cast<std::size_t>(n * c)), want_r(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    double ms = 0.0;
    for (std::int64_t j = 0; j < c; ++j) ms += x.item(i * c + j) * x.item(i * c + j) / static_cast<double>(c);
    const double r = 1.0 / std::sqrt(ms + eps);
    want_r[static_cast<std::size_t>(i)] = r;
    for (std::int64_t j = 0; j < c; ++j)
      want_y[static_cast<std::size_t>(i * c + j)] = x.item(i * c + j) * r * w.item(j);
  }
  expect_close("rmsnorm y", y, want_y, tol_for(dt));
  expect_close("rmsnorm rstd", rstd, want_r, tol_for(dt));
}

TEST_P(RmsNormTest, OutputRowsHaveUnitRmsWithUnitWeight) {
  const DType dt = GetParam();
  const std::int64_t n = 4, c = 64;
  Tensor x = randn({n, c}, 3, dt, 5.0);
  Tensor w = Tensor::empty({c}, dt);
  kernels::fill(w, 1.0);
  Tensor y = Tensor::empty({n, c}, dt), rstd = Tensor::empty({n}, dt);
  kernels::rmsnorm_forward(x, w, 0.0, y, rstd);
  for (std::int64_t i = 0; i < n; ++i) {
    double ms = 0.0;
    for (std::int64_t j = 0; j < c; ++j) ms += y.item(i * c + j) * y.item(i * c + j) / static_cast<double>(c);
    EXPECT_NEAR(ms, 1.0, 10 * tol_for(dt)) << "row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RmsNormTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(RmsNorm, BackwardMatchesFiniteDifferences) {
  // C = 70 exercises two column chunks of the weight gradient.
  const std::int64_t n = 5, c = 70;
  const double eps = 1e-6;
  Tensor x = randn({n, c}, 4), w = randn({c}, 5), r = randn({n, c}, 6);
  Tensor y = Tensor::empty({n, c}, DType::F64), rstd = Tensor::empty({n}, DType::F64);
  auto loss = [&] {
    kernels::rmsnorm_forward(x, w, eps, y, rstd);
    return testing::dot(y, r);
  };
  loss();
  Tensor dx = Tensor::empty({n, c}, DType::F64);
  Tensor dw = randn({c}, 7);  // accumulated into: subtract the initial value afterwards
  const Tensor dw0 = dw.clone();
  kernels::rmsnorm_backward(r, x, w, rstd, dx, dw);
  kernels::axpy(-1.0, dw0, dw);
  // The loss sums n * c terms, so the central difference carries ~1e-16 |loss| / h of rounding noise:
  // a larger step and an absolute floor of 1e-3 keep the relative comparison meaningful for tiny entries.
  testing::expect_gradient("rmsnorm dx", x, dx, loss, 1e-6, 1e-5, 0, 1e-3);
  testing::expect_gradient("rmsnorm dweight", w, dw, loss, 1e-6, 1e-5, 0, 1e-3);
}

TEST(RmsNorm, BackwardAccumulatesWeightGradient) {
  const std::int64_t n = 3, c = 10;
  Tensor x = randn({n, c}, 8), w = randn({c}, 9), dy = randn({n, c}, 10);
  Tensor y = Tensor::empty({n, c}, DType::F64), rstd = Tensor::empty({n}, DType::F64);
  kernels::rmsnorm_forward(x, w, 1e-6, y, rstd);
  Tensor dx = Tensor::empty({n, c}, DType::F64), dw1 = Tensor::zeros({c}, DType::F64),
         dw2 = Tensor::zeros({c}, DType::F64);
  kernels::rmsnorm_backward(dy, x, w, rstd, dx, dw1);
  kernels::rmsnorm_backward(dy, x, w, rstd, dx, dw2);
  kernels::rmsnorm_backward(dy, x, w, rstd, dx, dw2);
  std::vector<double> twice = testing::values(dw1);
  for (double& v : twice) v *= 2.0;
  expect_close("dweight accumulated twice", dw2, twice, 1e-14);
}

TEST(RmsNorm, ArgumentErrors) {
  Tensor x = randn({3, 8}, 1), w = randn({8}, 2);
  Tensor y = Tensor::empty({3, 8}, DType::F64), rstd = Tensor::empty({3}, DType::F64);
  Tensor w_bad = randn({7}, 2);
  expect_error([&] { kernels::rmsnorm_forward(x, w_bad, 1e-6, y, rstd); },
               {"rmsnorm_forward", "weight", "[8]"});
  Tensor rstd_bad = Tensor::empty({4}, DType::F64);
  expect_error([&] { kernels::rmsnorm_forward(x, w, 1e-6, y, rstd_bad); },
               {"rmsnorm_forward", "rstd", "3 values"});
  expect_error([&] { kernels::rmsnorm_forward(x, w, -1.0, y, rstd); }, {"rmsnorm_forward", "eps"});
  Tensor y32 = Tensor::empty({3, 8}, DType::F32);
  expect_error([&] { kernels::rmsnorm_forward(x, w, 1e-6, y32, rstd); }, {"rmsnorm_forward", "same dtype"});
  Tensor dx = Tensor::empty({3, 8}, DType::F64), dw_bad = Tensor::zeros({3}, DType::F64);
  expect_error([&] { kernels::rmsnorm_backward(y, x, w, rstd, dx, dw_bad); },
               {"rmsnorm_backward", "dweight"});
}

}  // namespace
}  // namespace quopt
