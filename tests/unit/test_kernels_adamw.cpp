// adamw_update: several steps against torch.optim.AdamW's update written out independently in fp64.
#include <gtest/gtest.h>

#include <cmath>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;

// torch.optim.AdamW (single-tensor path) for one element, in its own operation order:
//   param.mul_(1 - lr wd); exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq = beta2 v + (1 - beta2) g^2;
//   denom = sqrt(exp_avg_sq) / sqrt(1 - beta2^t) + eps; param -= lr / (1 - beta1^t) * exp_avg / denom.
struct RefState {
  double p, m, v;
};
void torch_adamw_step(RefState& s, double g, const kernels::AdamWHyper& h) {
  s.p *= 1.0 - h.lr * h.weight_decay;
  s.m += (g - s.m) * (1.0 - h.beta1);
  s.v = h.beta2 * s.v + (1.0 - h.beta2) * g * g;
  const double t = static_cast<double>(h.step);
  const double denom = std::sqrt(s.v) / std::sqrt(1.0 - std::pow(h.beta2, t)) + h.eps;
  s.p -= h.lr / (1.0 - std::pow(h.beta1, t)) * s.m / denom;
}

class AdamWTest : public ::testing::TestWithParam<DType> {};

TEST_P(AdamWTest, ThreeStepsMatchTorchFormula) {
  const DType dt = GetParam();
  const std::int64_t n = 50;
  Tensor p = randn({5, 10}, 1, dt), m = Tensor::zeros({5, 10}, dt), v = Tensor::zeros({5, 10}, dt);
  std::vector<RefState> ref(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) ref[static_cast<std::size_t>(i)] = {p.item(i), 0.0, 0.0};
  kernels::AdamWHyper h;
  h.lr = 3e-3;
  h.beta1 = 0.9;
  h.beta2 = 0.95;
  h.eps = 1e-8;
  h.weight_decay = 0.1;
  for (std::int64_t step = 1; step <= 3; ++step) {
    h.step = step;
    Tensor g = randn({5, 10}, 10 + static_cast<std::uint64_t>(step), dt, 0.5);
    for (std::int64_t i = 0; i < n; ++i) torch_adamw_step(ref[static_cast<std::size_t>(i)], g.item(i), h);
    kernels::adamw_update(p, g, m, v, h);
    std::vector<double> wp, wm, wv;
    for (const auto& r : ref) {
      wp.push_back(r.p);
      wm.push_back(r.m);
      wv.push_back(r.v);
    }
    const double tol = dt == DType::F64 ? 1e-12 : 1e-6;
    expect_close(cat("param after step ", step), p, wp, tol);
    expect_close(cat("m after step ", step), m, wm, tol);
    expect_close(cat("v after step ", step), v, wv, tol);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AdamWTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(AdamW, FirstStepMovesBySignTimesLr) {
  // With zero state, step 1 and no decay: m/bc1 = g and sqrt(v/bc2) = |g|, so p moves by lr g / (|g| + eps).
  Tensor p = randn({20}, 2), g = randn({20}, 3), m = Tensor::zeros({20}, DType::F64),
         v = Tensor::zeros({20}, DType::F64);
  const std::vector<double> p0 = testing::values(p);
  kernels::AdamWHyper h;
  h.lr = 0.01;
  h.eps = 0.0;
  kernels::adamw_update(p, g, m, v, h);
  for (std::int64_t i = 0; i < 20; ++i) {
    EXPECT_NEAR(p.item(i), p0[static_cast<std::size_t>(i)] - 0.01 * (g.item(i) > 0 ? 1.0 : -1.0), 1e-15);
  }
}

TEST(AdamW, ArgumentErrors) {
  Tensor p = randn({4}, 1), g = randn({4}, 2), m = Tensor::zeros({4}, DType::F64),
         v = Tensor::zeros({4}, DType::F64);
  kernels::AdamWHyper h;
  h.lr = 1e-3;
  h.step = 0;
  expect_error([&] { kernels::adamw_update(p, g, m, v, h); }, {"adamw_update", "step = 0"});
  h.step = 1;
  h.beta1 = 1.0;
  expect_error([&] { kernels::adamw_update(p, g, m, v, h); }, {"adamw_update", "beta1"});
  h.beta1 = 0.9;
  h.lr = -1.0;
  expect_error([&] { kernels::adamw_update(p, g, m, v, h); }, {"adamw_update", "lr"});
  h.lr = 1e-3;
  Tensor g_bad = randn({5}, 2);
  expect_error([&] { kernels::adamw_update(p, g_bad, m, v, h); },
               {"adamw_update", "'grad'", "number of elements"});
  expect_error([&] { kernels::adamw_update(p, g, m, m, h); }, {"adamw_update", "overlaps"});
  Tensor m32 = Tensor::zeros({4}, DType::F32);
  expect_error([&] { kernels::adamw_update(p, g, m32, v, h); }, {"adamw_update", "'m'", "same dtype"});
}

}  // namespace
}  // namespace quopt
