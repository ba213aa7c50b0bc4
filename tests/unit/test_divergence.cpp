// Divergence handling: a non-finite loss or gradient norm is never applied; it is skipped up to the
// configured count or stops the run with advice that is true to the config (lower the clip when clipping
// is on, enable it when it is off); non-finite weights stop the run naming the tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/finite.hpp"
#include "support/error_of.hpp"
#include "train/divergence.hpp"

namespace quopt {
namespace {

using testing::error_of;
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(Divergence, FiniteStepsAreAppliedAndNonFiniteOnesNever) {
  TrainConfig t;
  OptimizerConfig o;
  t.max_nonfinite_skips = 2;
  DivergenceGuard g(t, o);
  EXPECT_TRUE(g.admit(1, 3.0, 0.5, ""));
  EXPECT_FALSE(g.admit(2, 3.0, kInf, ""));  // a finite loss with an overflowing gradient: not applied
  EXPECT_FALSE(g.admit(3, kNan, kNan, ""));
  EXPECT_EQ(g.skipped(), 2);
  EXPECT_TRUE(g.admit(4, 2.9, 0.4, ""));
  const std::string msg = error_of([&] { g.admit(5, 2.9, -kInf, ""); });  // the third: stop
  EXPECT_NE(msg.find("step 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.max_nonfinite_skips = 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--resume auto"), std::string::npos) << msg;
}

TEST(Divergence, TheAdviceIsTrueToTheConfig) {
  TrainConfig t;
  OptimizerConfig o;
  o.lr = 0.02;
  t.grad_clip = 1.0;  // clipping on: "enable train.grad_clip" would be false
  std::string msg = error_of([&] { DivergenceGuard(t, o).admit(7, kNan, 1.0, ""); });
  EXPECT_NE(msg.find("lower optimizer.lr (now 0.02)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lower train.grad_clip (now 1)"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("enable train.grad_clip"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.max_nonfinite_skips"), std::string::npos)
      << "skipping is offered when off: " << msg;
  t.grad_clip = 0.0;
  msg = error_of([&] { DivergenceGuard(t, o).admit(7, kNan, 1.0, ""); });
  EXPECT_NE(msg.find("enable train.grad_clip"), std::string::npos) << msg;
  // Non-finite weights: the optimizer's update broke down; skipping cannot help, so no skip is spent.
  t.max_nonfinite_skips = 5;
  DivergenceGuard g(t, o);
  msg = error_of([&] { g.admit(9, kNan, kNan, "block.00/attn_q holds 3 non-finite values"); });
  EXPECT_NE(msg.find("block.00/attn_q"), std::string::npos) << msg;
  EXPECT_NE(msg.find("weights are no longer finite"), std::string::npos) << msg;
  EXPECT_EQ(g.skipped(), 0);
}

TEST(Finite, CountsNanAndInfOfEachFloatTypeAndNamesTheFirstTensor) {
  Tensor f = Tensor::zeros({2, 3});
  Tensor d = Tensor::zeros({4}, DType::F64);
  Tensor i = Tensor::zeros({4}, DType::I32);
  EXPECT_EQ(count_nonfinite(f), 0);
  f.data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  f.data<float>()[5] = -std::numeric_limits<float>::infinity();
  f.data<float>()[2] = std::numeric_limits<float>::max();  // large is still finite
  d.data<double>()[3] = kInf;
  EXPECT_EQ(count_nonfinite(f), 2);
  EXPECT_EQ(count_nonfinite(d), 1);
  EXPECT_EQ(count_nonfinite(i), 0);
  EXPECT_EQ(describe_nonfinite({{"ok", i}}), "");
  const std::string msg = describe_nonfinite({{"ok", i}, {"w/a", f}, {"w/b", d}});
  EXPECT_NE(msg.find("w/a holds 2 non-finite values"), std::string::npos) << msg;
  EXPECT_NE(msg.find("of 6"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 more tensor"), std::string::npos) << msg;
}

}  // namespace
}  // namespace quopt
