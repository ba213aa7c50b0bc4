// relu2_* and swiglu_*: forward against naive formulas, backward by finite differences.
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

class MlpTest : public ::testing::TestWithParam<DType> {};

TEST_P(MlpTest, Relu2ForwardMatchesNaive) {
  const DType dt = GetParam();
  Tensor x = randn({5, 13}, 1, dt, 2.0);
  Tensor y = Tensor::empty({5, 13}, dt);
  kernels::relu2_forward(x, y);
  std::vector<double> want = testing::values(x);
  for (double& v : want) v = v > 0 ? v * v : 0.0;
  expect_close("relu2_forward", y, want, tol_for(dt));
}

TEST_P(MlpTest, SwigluForwardMatchesNaive) {
  const DType dt = GetParam();
  Tensor gate = randn({4, 11}, 2, dt, 3.0), up = randn({4, 11}, 3, dt);
  Tensor y = Tensor::empty({4, 11}, dt);
  kernels::swiglu_forward(gate, up, y);
  std::vector<double> want(44);
  for (std::int64_t i = 0; i < 44; ++i) {
    const double g = gate.item(i);
    want[static_cast<std::size_t>(i)] = g / (1.0 + std::exp(-g)) * up.item(i);
  }
  expect_close("swiglu_forward", y, want, tol_for(dt));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MlpTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Mlp, Relu2BackwardMatchesFiniteDifferences) {
  Tensor x = randn({6, 7}, 4), r = randn({6, 7}, 5);
  Tensor y = Tensor::empty({6, 7}, DType::F64), dx = Tensor::empty({6, 7}, DType::F64);
  kernels::relu2_backward(r, x, dx);
  testing::expect_gradient("relu2 dx", x, dx, [&] {
    kernels::relu2_forward(x, y);
    return testing::dot(y, r);
  });
  // Negative inputs get exactly zero gradient.
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    if (x.item(i) < 0) {
      EXPECT_EQ(dx.item(i), 0.0);
    }
  }
}

TEST(Mlp, SwigluBackwardMatchesFiniteDifferences) {
  Tensor gate = randn({5, 9}, 6, DType::F64, 2.0), up = randn({5, 9}, 7), r = randn({5, 9}, 8);
  Tensor y = Tensor::empty({5, 9}, DType::F64);
  Tensor dgate = Tensor::empty({5, 9}, DType::F64), dup = Tensor::empty({5, 9}, DType::F64);
  kernels::swiglu_backward(r, gate, up, dgate, dup);
  auto loss = [&] {
    kernels::swiglu_forward(gate, up, y);
    return testing::dot(y, r);
  };
  // Step 1e-5 and an absolute floor 1e-3: the summed loss puts ~1e-16 |loss| / h of rounding noise
  // into each central difference, which would dominate the relative error of near-zero entries.
  testing::expect_gradient("swiglu dgate", gate, dgate, loss, 1e-6, 1e-5, 0, 1e-3);
  testing::expect_gradient("swiglu dup", up, dup, loss, 1e-6, 1e-5, 0, 1e-3);
}

TEST(Mlp, SwigluIsFiniteForLargeGates) {
  Tensor gate = Tensor::empty({4}, DType::F32), up = Tensor::empty({4}, DType::F32),
         dy = Tensor::empty({4}, DType::F32);
  const float g[4] = {-1000.f, -90.f, 90.f, 1000.f};
  for (int i = 0; i < 4; ++i) {
    gate.data<float>()[i] = g[i];
    up.data<float>()[i] = 1.f;
    dy.data<float>()[i] = 1.f;
  }
  Tensor y = Tensor::empty({4}, DType::F32), dgate = Tensor::empty({4}, DType::F32),
         dup = Tensor::empty({4}, DType::F32);
  kernels::swiglu_forward(gate, up, y);
  kernels::swiglu_backward(dy, gate, up, dgate, dup);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(std::isfinite(y.item(i)) && std::isfinite(dgate.item(i)) && std::isfinite(dup.item(i)))
        << g[i];
  }
  EXPECT_NEAR(y.item(3), 1000.0, 1e-3);   // silu(g) -> g for large g
  EXPECT_NEAR(dgate.item(3), 1.0, 1e-6);  // and its derivative -> 1
  EXPECT_NEAR(y.item(0), 0.0, 1e-30);
}

TEST(Mlp, ArgumentErrors) {
  Tensor x = randn({3, 4}, 1), y_bad = Tensor::empty({3, 5}, DType::F64);
  expect_error([&] { kernels::relu2_forward(x, y_bad); },
               {"relu2_forward", "number of elements", y_bad.describe()});
  Tensor up32 = randn({3, 4}, 1, DType::F32), y = Tensor::empty({3, 4}, DType::F64);
  expect_error([&] { kernels::swiglu_forward(x, up32, y); }, {"swiglu_forward", "'up'", "same dtype"});
  Tensor d = Tensor::empty({3, 4}, DType::F64);
  expect_error([&] { kernels::swiglu_backward(x, x, x, d, d); }, {"swiglu_backward", "overlaps"});
}

}  // namespace
}  // namespace quopt
