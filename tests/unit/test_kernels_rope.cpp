// rope_forward / rope_backward: against a complex-number reference, norm preservation, relative-position
// property, inverse, gradient check and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;
using testing::tol_for;

constexpr double kTheta = 10000.0;  // GPT-NeoX / Llama default base; any positive value works here

// Reference: the pair (x_i, x_{i+D/2}) as the complex number x_i + i x_{i+D/2}, multiplied by
// exp(i t theta^(-2i/D)).
std::vector<double> reference(const Tensor& x, double theta) {
  const std::int64_t b = x.dim(0), t = x.dim(1), h = x.dim(2), d = x.dim(3), half = d / 2;
  std::vector<double> out = testing::values(x);
  for (std::int64_t bi = 0; bi < b; ++bi) {
    for (std::int64_t ti = 0; ti < t; ++ti) {
      for (std::int64_t hi = 0; hi < h; ++hi) {
        const std::int64_t base = ((bi * t + ti) * h + hi) * d;
        for (std::int64_t i = 0; i < half; ++i) {
          const double freq = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(d));
          const std::complex<double> z(x.item(base + i), x.item(base + i + half));
          const std::complex<double> rz = z * std::polar(1.0, static_cast<double>(ti) * freq);
          out[static_cast<std::size_t>(base + i)] = rz.real();
          out[static_cast<std::size_t>(base + i + half)] = rz.imag();
        }
      }
    }
  }
  return out;
}

class RopeTest : public ::testing::TestWithParam<DType> {};

TEST_P(RopeTest, ForwardMatchesComplexRotation) {
  const DType dt = GetParam();
  Tensor x = randn({2, 9, 3, 8}, 1, dt);
  const std::vector<double> want = reference(x, kTheta);
  kernels::rope_forward(x, kTheta);
  expect_close("rope_forward", x, want, tol_for(dt));
}

TEST_P(RopeTest, PreservesNormsAndPositionZero) {
  const DType dt = GetParam();
  const std::int64_t b = 2, t = 5, h = 2, d = 6;
  Tensor x = randn({b, t, h, d}, 2, dt);
  const Tensor x0 = x.clone();
  kernels::rope_forward(x, kTheta);
  for (std::int64_t row = 0; row < b * t * h; ++row) {
    const std::int64_t pos = (row / h) % t;
    for (std::int64_t i = 0; i < d / 2; ++i) {
      const std::int64_t a = row * d + i, c = row * d + i + d / 2;
      const double before = std::hypot(x0.item(a), x0.item(c)), after = std::hypot(x.item(a), x.item(c));
      EXPECT_NEAR(after, before, tol_for(dt) * (1 + before)) << "row " << row << " pair " << i;
      if (pos == 0) {
        EXPECT_EQ(x.item(a), x0.item(a));
        EXPECT_EQ(x.item(c), x0.item(c));
      }
    }
  }
}

TEST_P(RopeTest, BackwardInvertsForward) {
  const DType dt = GetParam();
  Tensor x = randn({1, 7, 2, 10}, 3, dt);
  const std::vector<double> x0 = testing::values(x);
  kernels::rope_forward(x, kTheta);
  kernels::rope_backward(x, kTheta);
  expect_close("rope_backward(rope_forward(x))", x, x0, tol_for(dt));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RopeTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Rope, ScoresDependOnlyOnRelativePosition) {
  // The same q and k vectors at every position: <rope(q)_t1, rope(k)_t2> depends on t1 - t2 only.
  const std::int64_t t = 12, d = 16;
  Tensor q = Tensor::empty({1, t, 1, d}, DType::F64), k = Tensor::empty({1, t, 1, d}, DType::F64);
  const Tensor qv = randn({d}, 4), kv = randn({d}, 5);
  for (std::int64_t p = 0; p < t; ++p) {
    for (std::int64_t i = 0; i < d; ++i) {
      q.data<double>()[p * d + i] = qv.item(i);
      k.data<double>()[p * d + i] = kv.item(i);
    }
  }
  kernels::rope_forward(q, 500000.0);
  kernels::rope_forward(k, 500000.0);
  auto score = [&](std::int64_t t1, std::int64_t t2) {
    double s = 0.0;
    for (std::int64_t i = 0; i < d; ++i) s += q.item(t1 * d + i) * k.item(t2 * d + i);
    return s;
  };
  for (std::int64_t shift = 1; shift < 6; ++shift) {
    EXPECT_NEAR(score(5, 2), score(5 + shift, 2 + shift), 1e-12);
    EXPECT_NEAR(score(3, 3), score(3 + shift, 3 + shift), 1e-12);
  }
  EXPECT_GT(std::fabs(score(5, 2) - score(5, 4)), 1e-6);  // but it does depend on the offset
}

TEST(Rope, BackwardMatchesFiniteDifferences) {
  Tensor x = randn({2, 4, 2, 6}, 6), r = randn({2, 4, 2, 6}, 7);
  Tensor grad = r.clone();
  kernels::rope_backward(grad, kTheta);  // d sum(rope(x) * r) / dx
  Tensor y = Tensor::empty(x.shape(), DType::F64);
  testing::expect_gradient("rope dx", x, grad, [&] {
    y.copy_from(x);
    kernels::rope_forward(y, kTheta);
    return testing::dot(y, r);
  });
}

TEST(Rope, ArgumentErrors) {
  Tensor odd = randn({1, 2, 1, 5}, 1);
  expect_error([&] { kernels::rope_forward(odd, kTheta); }, {"rope_forward", "even", odd.describe()});
  Tensor three = randn({2, 1, 4}, 1);
  expect_error([&] { kernels::rope_backward(three, kTheta); }, {"rope_backward", "4-D"});
  Tensor x = randn({1, 2, 1, 4}, 1);
  expect_error([&] { kernels::rope_forward(x, 0.0); }, {"rope_forward", "theta"});
  Tensor xi = Tensor::zeros({1, 2, 1, 4}, DType::I32);
  expect_error([&] { kernels::rope_forward(xi, kTheta); }, {"rope_forward", "f32 or f64"});
}

}  // namespace
}  // namespace quopt
