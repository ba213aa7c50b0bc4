// add / axpy / scale / fill against naive loops, aliasing and argument errors.
#include <gtest/gtest.h>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;
using testing::tol_for;

class ElementwiseTest : public ::testing::TestWithParam<DType> {};

TEST_P(ElementwiseTest, AddAxpyScaleFillMatchNaive) {
  const DType dt = GetParam();
  Tensor a = randn({3, 17}, 1, dt), b = randn({3, 17}, 2, dt);
  const std::vector<double> va = testing::values(a), vb = testing::values(b);
  std::vector<double> want(va.size());

  Tensor out = Tensor::empty({3, 17}, dt);
  kernels::add(a, b, out);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = va[i] + vb[i];
  expect_close("add", out, want, tol_for(dt));

  Tensor y = b.clone();
  kernels::axpy(-2.5, a, y);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = vb[i] - 2.5 * va[i];
  expect_close("axpy", y, want, tol_for(dt));

  Tensor s = a.clone();
  kernels::scale(s, 0.125);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = va[i] * 0.125;
  expect_close("scale", s, want, tol_for(dt));

  kernels::fill(s, 3.25);
  for (double& v : want) v = 3.25;
  expect_close("fill", s, want, 0.0);
}

TEST_P(ElementwiseTest, AddAllowsOutputAliasingAnInput) {
  const DType dt = GetParam();
  Tensor a = randn({40}, 3, dt), b = randn({40}, 4, dt);
  const std::vector<double> va = testing::values(a), vb = testing::values(b);
  std::vector<double> want(va.size());
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = va[i] + vb[i];
  Tensor a2 = a.clone();
  kernels::add(a, b, a);  // out aliases a
  expect_close("add into a", a, want, tol_for(dt));
  kernels::add(b, a2, b);  // out aliases b
  expect_close("add into b", b, want, tol_for(dt));
}

TEST_P(ElementwiseTest, OperatesOnViews) {
  const DType dt = GetParam();
  Tensor x = Tensor::zeros({4, 5}, dt);
  Tensor rows = x.slice(1, 3);
  kernels::fill(rows, 1.0);
  for (std::int64_t i = 0; i < 20; ++i) EXPECT_EQ(x.item(i), (i >= 5 && i < 15) ? 1.0 : 0.0) << i;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ElementwiseTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Elementwise, ArgumentErrors) {
  Tensor a = randn({2, 3}, 1), b = randn({3, 3}, 2), out = Tensor::empty({2, 3}, DType::F64);
  expect_error([&] { kernels::add(a, b, out); }, {"add", "'b'", b.describe(), "number of elements"});
  Tensor x32 = randn({2, 3}, 1, DType::F32);
  expect_error([&] { kernels::axpy(1.0, x32, a); }, {"axpy", "same dtype"});
  expect_error([&] { kernels::axpy(std::nan(""), a, out); }, {"axpy", "alpha"});
  Tensor xi = Tensor::zeros({4}, DType::I32);
  expect_error([&] { kernels::scale(xi, 2.0); }, {"scale", "f32 or f64"});
  Tensor undefined;
  expect_error([&] { kernels::fill(undefined, 0.0); }, {"fill", "undefined"});
}

}  // namespace
}  // namespace quopt
