// sign_scaled / rms_normalize (Scion's LMOs) against naive long-double references, in place and out of
// place, on 1-D and 2-D tensors, and their argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;

// x / (gain * rms + eps) along rows (axis 1) or columns (axis 0) of x [rows, cols].
std::vector<double> naive_rms_normalize(const Tensor& x, std::int64_t rows, std::int64_t cols, int axis,
                                        double gain, double eps) {
  std::vector<double> out(static_cast<std::size_t>(rows * cols));
  const std::int64_t outer = axis == 1 ? rows : cols, inner = axis == 1 ? cols : rows;
  for (std::int64_t o = 0; o < outer; ++o) {
    auto at = [&](std::int64_t i) { return axis == 1 ? o * cols + i : i * cols + o; };
    long double s = 0.0L;
    for (std::int64_t i = 0; i < inner; ++i) s += static_cast<long double>(x.item(at(i))) * x.item(at(i));
    const long double den = gain * std::sqrt(s / inner) + eps;
    for (std::int64_t i = 0; i < inner; ++i)
      out[static_cast<std::size_t>(at(i))] = static_cast<double>(x.item(at(i)) / den);
  }
  return out;
}

class LmoTest : public ::testing::TestWithParam<DType> {};

TEST_P(LmoTest, SignScaledIsTheScaledSignWithZeroForZeroAndNan) {
  const DType dt = GetParam();
  Tensor x = randn({5, 7}, 1, dt);
  Tensor zero_row = x.slice(0, 1);
  kernels::fill(zero_row, 0.0);
  Tensor nan_row = x.slice(1, 2);
  kernels::fill(nan_row, std::numeric_limits<double>::quiet_NaN());
  Tensor y = Tensor::empty(x.shape(), dt);
  kernels::sign_scaled(x, 0.25, y);
  std::vector<double> want(35);
  for (std::int64_t i = 0; i < 35; ++i) {
    const double v = x.item(i);
    want[static_cast<std::size_t>(i)] = v > 0 ? 0.25 : (v < 0 ? -0.25 : 0.0);  // NaN: neither
  }
  expect_close("sign_scaled", y, want, 0.0);
  kernels::sign_scaled(x, -3.0, x);  // in place
  for (auto& w : want) w *= -12.0;
  expect_close("sign_scaled in place", x, want, 0.0);
}

TEST_P(LmoTest, RmsNormalizeRowsAndColumnsMatchNaive) {
  const DType dt = GetParam();
  const double tol = dt == DType::F64 ? 1e-14 : 1e-7;
  // Columns past one 64-column chunk of the column pass, and a ragged last chunk.
  for (const auto& [rows, cols] : {std::pair<std::int64_t, std::int64_t>{13, 150}, {70, 5}, {1, 1}}) {
    for (int axis : {0, 1}) {
      const double gain = axis == 0 ? static_cast<double>(cols) : 1.0;
      Tensor x = randn({rows, cols}, static_cast<std::uint64_t>(rows * 31 + axis), dt, 2.0);
      Tensor y = Tensor::empty(x.shape(), dt);
      kernels::rms_normalize(x, axis, gain, 1e-8, y);
      const auto want = naive_rms_normalize(x, rows, cols, axis, gain, 1e-8);
      expect_close(cat("rms_normalize axis ", axis, " ", rows, "x", cols), y, want, tol);
      kernels::rms_normalize(x, axis, gain, 1e-8, x);  // in place: the same bits
      expect_close("rms_normalize in place", x, testing::values(y), 0.0);
    }
  }
}

TEST_P(LmoTest, RmsNormalizeOfAVectorIsOneRowAndZerosStayZero) {
  const DType dt = GetParam();
  Tensor g = randn({40}, 3, dt);
  Tensor y = Tensor::empty({40}, dt);
  kernels::rms_normalize(g, 1, 1.0, 1e-8, y);
  expect_close("rms_normalize 1-D", y, naive_rms_normalize(g, 1, 40, 1, 1.0, 1e-8),
               dt == DType::F64 ? 1e-14 : 1e-7);
  // RMS of the result is 1 (up to eps).
  EXPECT_NEAR(std::sqrt(kernels::sum_squares(y) / 40.0), 1.0, 1e-6);
  Tensor z = Tensor::zeros({3, 4}, dt), zy = Tensor::empty({3, 4}, dt);
  kernels::rms_normalize(z, 0, 4.0, 1e-8, zy);  // eps keeps a zero column finite
  EXPECT_EQ(kernels::sum_squares(zy), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LmoTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Lmo, BadArgumentsAreClearErrors) {
  Tensor x = randn({3, 4}, 5, DType::F32);
  Tensor y = Tensor::empty({4, 3}, DType::F32);
  expect_error([&] { kernels::rms_normalize(x, 0, 1.0, 1e-8, y); }, {"rms_normalize", "expected shape"});
  Tensor y2 = Tensor::empty({3, 4}, DType::F32);
  expect_error([&] { kernels::rms_normalize(x, 2, 1.0, 1e-8, y2); }, {"rms_normalize", "axis"});
  expect_error([&] { kernels::rms_normalize(x, 0, 0.0, 1e-8, y2); }, {"rms_normalize", "gain"});
  Tensor cube = randn({2, 2, 2}, 6, DType::F32);
  expect_error([&] { kernels::rms_normalize(cube, 1, 1.0, 1e-8, cube); }, {"rms_normalize", "2-D"});
  Tensor flat = x.reshape({12});
  Tensor shifted = flat.slice(1, 12);
  Tensor head = flat.slice(0, 11);
  expect_error([&] { kernels::sign_scaled(head, 1.0, shifted); }, {"sign_scaled", "overlaps"});
  expect_error([&] { kernels::sign_scaled(x, INFINITY, y2); }, {"sign_scaled", "finite"});
}

}  // namespace
}  // namespace quopt
