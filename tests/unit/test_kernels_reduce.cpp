// sum_squares against a naive long-double sum, across the chunk boundaries of the fixed-order reduction.
#include <gtest/gtest.h>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_error;
using testing::randn;

long double naive_sum_squares(const Tensor& x) {
  long double s = 0.0L;
  for (std::int64_t i = 0; i < x.numel(); ++i) s += static_cast<long double>(x.item(i)) * x.item(i);
  return s;
}

class ReduceTest : public ::testing::TestWithParam<DType> {};

TEST_P(ReduceTest, SumSquaresMatchesNaive) {
  const DType dt = GetParam();
  // Sizes around the 8192-element chunk of the reduction, plus ragged tails of the 4-way unrolling.
  for (std::int64_t n : {1, 3, 5, 8191, 8192, 8193, 3 * 8192 + 7, 100000}) {
    Tensor x = randn({n}, static_cast<std::uint64_t>(n), dt, 3.0);
    const double want = static_cast<double>(naive_sum_squares(x));
    const double got = kernels::sum_squares(x);
    // fp64 accumulation of n positive terms: relative error well below n * 2^-53.
    EXPECT_NEAR(got, want, 1e-13 * want) << "n = " << n;
    EXPECT_EQ(got, kernels::sum_squares(x)) << "not deterministic for n = " << n;
  }
}

TEST_P(ReduceTest, SumSquaresOfConstantsAndEmpty) {
  const DType dt = GetParam();
  Tensor x = Tensor::empty({1000, 3}, dt);
  kernels::fill(x, -0.5);
  EXPECT_EQ(kernels::sum_squares(x), 750.0);  // exact: every partial sum is a multiple of 0.25
  Tensor e = Tensor::empty({0, 3}, dt);
  EXPECT_EQ(kernels::sum_squares(e), 0.0);
}

TEST_P(ReduceTest, SumSquaresOfSliceSeesOnlyTheSlice) {
  const DType dt = GetParam();
  Tensor x = Tensor::zeros({10, 4}, dt);
  kernels::fill(x, 10.0);
  Tensor rows = x.slice(2, 5);
  kernels::fill(rows, 1.0);
  EXPECT_EQ(kernels::sum_squares(rows), 12.0);
  EXPECT_EQ(kernels::sum_squares(x), 12.0 + 28 * 100.0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ReduceTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Reduce, FloatInputIsAccumulatedInDouble) {
  // 2^24 + 1 ones overflow a float accumulator's integer range; fp64 counts exactly.
  const std::int64_t n = (1 << 24) + 1;
  Tensor x = Tensor::empty({n}, DType::F32);
  kernels::fill(x, 1.0);
  EXPECT_EQ(kernels::sum_squares(x), static_cast<double>(n));
}

TEST(Reduce, ArgumentErrors) {
  Tensor xi = Tensor::zeros({4}, DType::I32);
  expect_error([&] { kernels::sum_squares(xi); }, {"sum_squares", "f32 or f64", xi.describe()});
}

}  // namespace
}  // namespace quopt
