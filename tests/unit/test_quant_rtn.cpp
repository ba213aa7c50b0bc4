// rtn_quantize (symmetric AbsMax round-to-nearest): values on the grid, scales, error bound, clamp,
// round-half-to-even ties, idempotence, groups, zero rows, bit widths and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "kernel_test_util.hpp"
#include "kernels/quant_ops.hpp"

namespace quopt {
namespace {

using testing::expect_error;
using testing::randn;

class RtnTest : public ::testing::TestWithParam<DType> {};

// Relative tolerance of a value computed in the tensor's dtype.
double rel_tol(DType dt) {
  return dt == DType::F64 ? 1e-14 : 1e-6;
}

// Rows with very different magnitudes so that per-row scales differ.
Tensor scaled_rows(std::int64_t n, std::int64_t c, std::uint64_t seed, DType dt) {
  Tensor x = randn({n, c}, seed, DType::F64);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < c; ++j)
      x.data<double>()[i * c + j] *= std::pow(10.0, static_cast<double>(i % 4) - 2);
  return x.astype(dt);
}

TEST_P(RtnTest, PerRowValuesLieOnTheScaledIntegerGrid) {
  const DType dt = GetParam();
  const std::int64_t n = 8, c = 40;
  const int bits = 4, m = 7;  // 2^(4-1) - 1
  Tensor x = scaled_rows(n, c, 11, dt);
  Tensor xq = Tensor::empty({n, c}, dt), s = Tensor::empty({n}, dt);
  kernels::rtn_quantize(x, bits, 0, xq, s);
  for (std::int64_t i = 0; i < n; ++i) {
    double amax = 0.0;
    for (std::int64_t j = 0; j < c; ++j) amax = std::max(amax, std::fabs(x.item(i * c + j)));
    const double want_scale = amax / m;
    EXPECT_NEAR(s.item(i), want_scale, rel_tol(dt) * want_scale) << "row " << i;
    for (std::int64_t j = 0; j < c; ++j) {
      const double code = xq.item(i * c + j) / want_scale;
      EXPECT_NEAR(code, std::round(code), 1e-4) << "row " << i << " col " << j << ": not on the grid";
      EXPECT_LE(std::fabs(code), m + 1e-4);
      // The dequantized value is exactly the integer code times the stored scale (in the dtype).
      const double stored = s.item(i), c_int = std::round(xq.item(i * c + j) / stored);
      if (dt == DType::F32) {
        EXPECT_EQ(xq.item(i * c + j),
                  static_cast<double>(static_cast<float>(c_int) * static_cast<float>(stored)));
      } else {
        EXPECT_EQ(xq.item(i * c + j), c_int * stored);
      }
      // Nearest grid point: the error is at most half a step (plus rounding of the dtype).
      EXPECT_LE(std::fabs(xq.item(i * c + j) - x.item(i * c + j)), 0.5 * want_scale * (1 + 1e-5) + 1e-30);
    }
  }
}

TEST_P(RtnTest, AbsMaxElementIsExactAndTheNegativeEdgeIsSymmetric) {
  const DType dt = GetParam();
  // Row 0: the largest magnitude is negative; with the asymmetric range -2^(b-1) would be reachable
  // but the symmetric AbsMax grid maps it to -m * scale = -7 exactly.
  Tensor x = Tensor::empty({2, 4}, DType::F64);
  const double v[] = {-7.0, 3.0, 1.0, 0.2, 2.0, -0.5, 14.0, 6.9};
  std::copy(v, v + 8, x.data<double>());
  x = x.astype(dt);
  Tensor xq = Tensor::empty({2, 4}, dt), s = Tensor::empty({2}, dt);
  kernels::rtn_quantize(x, 4, 0, xq, s);
  EXPECT_DOUBLE_EQ(s.item(0), 1.0);
  EXPECT_DOUBLE_EQ(xq.item(0), -7.0);
  EXPECT_DOUBLE_EQ(xq.item(1), 3.0);
  EXPECT_DOUBLE_EQ(s.item(1), 2.0);
  EXPECT_DOUBLE_EQ(xq.item(6), 14.0);
  EXPECT_DOUBLE_EQ(xq.item(7), 6.0);  // 6.9 / 2 = 3.45 -> 3
}

TEST(RtnScalar, CodesClampAtTheSymmetricEdges) {
  const int m = kernels::rtn_max_code(4);
  EXPECT_EQ(m, 7);
  EXPECT_EQ(kernels::rtn_code(100.0, 1.0, m), 7.0);
  EXPECT_EQ(kernels::rtn_code(-100.0, 1.0, m), -7.0);  // never -8: the grid has 2^b - 1 levels
  EXPECT_EQ(kernels::rtn_code(7.49, 1.0, m), 7.0);
  EXPECT_EQ(kernels::rtn_code(-7.6, 1.0, m), -7.0);
  EXPECT_EQ(kernels::rtn_dequantize(-0.26, 0.5, m), -0.5);
  EXPECT_EQ(kernels::rtn_scale(0.0, 4), 1.0);  // zero group: scale 1 (QuaRot), codes 0
  EXPECT_EQ(kernels::rtn_scale(14.0, 4), 2.0);
  EXPECT_EQ(kernels::rtn_scale(127.0, 8), 1.0);
}

TEST_P(RtnTest, TiesRoundHalfToEven) {
  const DType dt = GetParam();
  // scale = 7 / 7 = 1: x / scale is exactly k + 1/2 for the other entries.
  Tensor x = Tensor::empty({1, 8}, DType::F64);
  const double v[] = {7.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5};
  const double want[] = {7.0, 0.0, 2.0, 2.0, 0.0, -2.0, -2.0, 4.0};
  std::copy(v, v + 8, x.data<double>());
  x = x.astype(dt);
  Tensor xq = Tensor::empty({1, 8}, dt), s = Tensor::empty({1}, dt);
  kernels::rtn_quantize(x, 4, 0, xq, s);
  for (int j = 0; j < 8; ++j) EXPECT_EQ(xq.item(j), want[j]) << "x = " << v[j];
}

TEST_P(RtnTest, QuantizingTwiceChangesNothing) {
  const DType dt = GetParam();
  const std::int64_t n = 5, c = 64;
  Tensor x = scaled_rows(n, c, 12, dt);
  for (std::int64_t g : {std::int64_t{0}, std::int64_t{16}}) {
    const std::int64_t ns = g == 0 ? n : n * c / g;
    Tensor q1 = Tensor::empty({n, c}, dt), q2 = Tensor::empty({n, c}, dt);
    Tensor s1 = Tensor::empty({ns}, dt), s2 = Tensor::empty({ns}, dt);
    kernels::rtn_quantize(x, 3, g, q1, s1);
    kernels::rtn_quantize(q1, 3, g, q2, s2);
    for (std::int64_t i = 0; i < ns; ++i) EXPECT_NEAR(s2.item(i), s1.item(i), rel_tol(dt) * s1.item(i));
    for (std::int64_t i = 0; i < n * c; ++i) {
      EXPECT_NEAR(q2.item(i), q1.item(i), 4 * rel_tol(dt) * std::fabs(q1.item(i)))
          << "g " << g << " at " << i;
    }
  }
}

TEST_P(RtnTest, GroupsHaveTheirOwnScales) {
  const DType dt = GetParam();
  const std::int64_t n = 3, c = 32, g = 8;
  Tensor x = randn({n, c}, 13, DType::F64);
  // Make the groups of each row differ in magnitude by factors of 10.
  for (std::int64_t i = 0; i < n * c; ++i)
    x.data<double>()[i] *= std::pow(10.0, static_cast<double>((i % c) / g));
  x = x.astype(dt);
  Tensor xq = Tensor::empty({n, c}, dt), s = Tensor::empty({n, c / g}, dt);
  kernels::rtn_quantize(x, 4, g, xq, s);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t k = 0; k < c / g; ++k) {
      double amax = 0.0;
      for (std::int64_t j = k * g; j < (k + 1) * g; ++j) amax = std::max(amax, std::fabs(x.item(i * c + j)));
      const double sc = amax / 7.0;
      EXPECT_NEAR(s.item(i * (c / g) + k), sc, rel_tol(dt) * sc);
      for (std::int64_t j = k * g; j < (k + 1) * g; ++j) {
        const double want = std::clamp(std::nearbyint(x.item(i * c + j) / sc), -7.0, 7.0) * sc;
        EXPECT_NEAR(xq.item(i * c + j), want, 1e-5 * sc) << "row " << i << " col " << j;
      }
    }
  }
  // Per group of a row == per row of the tensor reshaped to [n * c / g, g].
  Tensor xr = x.reshape({n * c / g, g});
  Tensor qr = Tensor::empty({n * c / g, g}, dt), sr = Tensor::empty({n * c / g}, dt);
  kernels::rtn_quantize(xr, 4, 0, qr, sr);
  for (std::int64_t i = 0; i < n * c; ++i) EXPECT_EQ(qr.item(i), xq.item(i));
}

TEST_P(RtnTest, ZeroRowsGiveZerosAndNoNaN) {
  const DType dt = GetParam();
  Tensor x = randn({3, 16}, 14, dt);
  for (std::int64_t j = 0; j < 16; ++j) {
    if (dt == DType::F64)
      x.data<double>()[16 + j] = 0.0;
    else
      x.data<float>()[16 + j] = 0.0f;
  }
  Tensor xq = Tensor::empty({3, 16}, dt), s = Tensor::empty({3}, dt);
  kernels::rtn_quantize(x, 4, 0, xq, s);
  for (std::int64_t j = 0; j < 16; ++j) EXPECT_EQ(xq.item(16 + j), 0.0);
  EXPECT_EQ(s.item(1), 1.0);
  for (std::int64_t i = 0; i < 48; ++i) EXPECT_TRUE(std::isfinite(xq.item(i)));
  Tensor sg = Tensor::empty({3, 4}, dt);
  kernels::rtn_quantize(x, 4, 4, xq, sg);
  for (std::int64_t j = 0; j < 16; ++j) EXPECT_EQ(xq.item(16 + j), 0.0);
  // A row whose largest magnitude is the smallest subnormal: max / 7 underflows to 0; still zeros.
  Tensor tiny = Tensor::zeros({1, 4}, dt);
  if (dt == DType::F64) {
    tiny.data<double>()[1] = std::numeric_limits<double>::denorm_min();
  } else {
    tiny.data<float>()[1] = std::numeric_limits<float>::denorm_min();
  }
  Tensor tq = Tensor::empty({1, 4}, dt), ts = Tensor::empty({1}, dt);
  kernels::rtn_quantize(tiny, 4, 0, tq, ts);
  EXPECT_EQ(ts.item(0), 1.0);
  for (std::int64_t j = 0; j < 4; ++j) EXPECT_EQ(tq.item(j), 0.0);
}

TEST_P(RtnTest, EveryBitWidthUsesAtMostTwoToTheBMinusOneLevels) {
  const DType dt = GetParam();
  const std::int64_t c = 4096;
  // An even ramp over [-5, 5]: both signs reach the largest magnitude and every level is hit.
  Tensor x = Tensor::empty({1, c}, DType::F64);
  for (std::int64_t j = 0; j < c; ++j) x.data<double>()[j] = -5.0 + 10.0 * static_cast<double>(j) / (c - 1);
  x = x.astype(dt);
  for (int bits = kernels::kRtnMinBits; bits <= kernels::kRtnMaxBits; ++bits) {
    Tensor xq = Tensor::empty({1, c}, dt), s = Tensor::empty({1}, dt);
    kernels::rtn_quantize(x, bits, 0, xq, s);
    const int m = (1 << (bits - 1)) - 1;
    std::set<long> codes;
    for (std::int64_t j = 0; j < c; ++j) codes.insert(std::lround(xq.item(j) / s.item(0)));
    EXPECT_EQ(*codes.rbegin(), m) << bits << " bits";
    EXPECT_EQ(*codes.begin(), -m) << bits << " bits: the symmetric grid never uses -2^(b-1)";
    EXPECT_EQ(static_cast<int>(codes.size()), 2 * m + 1) << bits << " bits";
  }
}

TEST_P(RtnTest, InPlaceAndLeadingDimensions) {
  const DType dt = GetParam();
  Tensor x = randn({2, 3, 24}, 16, dt);
  Tensor xq = Tensor::empty({2, 3, 24}, dt), s = Tensor::empty({6}, dt);
  kernels::rtn_quantize(x, 4, 0, xq, s);
  Tensor y = x.clone(), s2 = Tensor::empty({6}, dt);
  kernels::rtn_quantize(y, 4, 0, y, s2);
  for (std::int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(y.item(i), xq.item(i));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RtnTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Rtn, ArgumentErrorsNameTheProblem) {
  Tensor x = randn({4, 12}, 17);
  Tensor xq = Tensor::empty({4, 12}, DType::F64), s = Tensor::empty({4}, DType::F64);
  expect_error([&] { kernels::rtn_quantize(x, 1, 0, xq, s); }, {"rtn_quantize", "bits = 1", "2..8"});
  expect_error([&] { kernels::rtn_quantize(x, 9, 0, xq, s); }, {"bits = 9"});
  expect_error([&] { kernels::rtn_quantize(x, 4, 5, xq, s); }, {"group_size = 5", "does not divide"});
  expect_error([&] { kernels::rtn_quantize(x, 4, -1, xq, s); }, {"group_size = -1"});
  Tensor s_bad = Tensor::empty({5}, DType::F64);
  expect_error([&] { kernels::rtn_quantize(x, 4, 0, xq, s_bad); }, {"scales", "expected 4 values"});
  Tensor s_grp = Tensor::empty({4, 3}, DType::F64);
  expect_error([&] { kernels::rtn_quantize(x, 4, 0, xq, s_grp); }, {"scales"});
  kernels::rtn_quantize(x, 4, 4, xq, s_grp);  // 3 groups of 4 per row: fine
  Tensor xq_f32 = Tensor::empty({4, 12}, DType::F32);
  expect_error([&] { kernels::rtn_quantize(x, 4, 0, xq_f32, s); }, {"xq", "same dtype"});
  Tensor xq_shape = Tensor::empty({12, 4}, DType::F64);
  expect_error([&] { kernels::rtn_quantize(x, 4, 0, xq_shape, s); }, {"xq", "expected shape"});
  Tensor part = x.slice(1, 3);
  Tensor overlap = x.slice(0, 2);
  Tensor s2 = Tensor::empty({2}, DType::F64);
  expect_error([&] { kernels::rtn_quantize(part, 4, 0, overlap, s2); }, {"overlaps"});
}

}  // namespace
}  // namespace quopt
