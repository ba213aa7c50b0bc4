// hadamard_transform: against the explicit Sylvester matrix, orthonormality, self-inverse, in place,
// and its argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/quant_ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;
using testing::tol_for;

// Sylvester's construction H_1 = [1], H_2k = [[H_k, H_k], [H_k, -H_k]], unnormalised, row-major.
std::vector<double> sylvester(std::int64_t b) {
  std::vector<double> h{1.0};
  for (std::int64_t k = 1; k < b; k *= 2) {
    std::vector<double> next(static_cast<std::size_t>(4 * k * k));
    for (std::int64_t i = 0; i < k; ++i) {
      for (std::int64_t j = 0; j < k; ++j) {
        const double v = h[static_cast<std::size_t>(i * k + j)];
        next[static_cast<std::size_t>(i * 2 * k + j)] = v;
        next[static_cast<std::size_t>(i * 2 * k + j + k)] = v;
        next[static_cast<std::size_t>((i + k) * 2 * k + j)] = v;
        next[static_cast<std::size_t>((i + k) * 2 * k + j + k)] = -v;
      }
    }
    h.swap(next);
  }
  return h;
}

class HadamardTest : public ::testing::TestWithParam<DType> {};

TEST_P(HadamardTest, MatchesTheExplicitBlockDiagonalSylvesterMatrix) {
  const DType dt = GetParam();
  for (std::int64_t b : {1, 2, 4, 8, 32, 128}) {
    const std::int64_t n = 3, blocks = 3, c = b * blocks;
    const std::vector<double> h = sylvester(b);
    Tensor x = randn({n, c}, 20 + static_cast<std::uint64_t>(b), dt);
    Tensor y = Tensor::empty({n, c}, dt);
    kernels::hadamard_transform(x, b, y);
    // y = x blockdiag(H_b, ..., H_b) / sqrt(b), as a dense product.
    std::vector<double> want(static_cast<std::size_t>(n * c), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t blk = 0; blk < blocks; ++blk)
        for (std::int64_t col = 0; col < b; ++col) {
          double acc = 0.0;
          for (std::int64_t k = 0; k < b; ++k)
            acc += x.item(i * c + blk * b + k) * h[static_cast<std::size_t>(k * b + col)];
          want[static_cast<std::size_t>(i * c + blk * b + col)] = acc / std::sqrt(static_cast<double>(b));
        }
    expect_close(cat("hadamard block ", b), y, want, 10 * tol_for(dt));
  }
}

TEST(HadamardMatrix, SylvesterMatrixIsSymmetricWithOrthogonalRows) {
  // The properties the transform relies on (x H = (H x^T)^T and H H^T = b I), checked on the test's matrix.
  const std::int64_t b = 16;
  const std::vector<double> h = sylvester(b);
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t j = 0; j < b; ++j) {
      EXPECT_EQ(h[static_cast<std::size_t>(i * b + j)], h[static_cast<std::size_t>(j * b + i)]);
      double dot = 0.0;
      for (std::int64_t k = 0; k < b; ++k)
        dot += h[static_cast<std::size_t>(i * b + k)] * h[static_cast<std::size_t>(j * b + k)];
      EXPECT_EQ(dot, i == j ? static_cast<double>(b) : 0.0);
    }
}

TEST_P(HadamardTest, IsOrthonormalAndItsOwnInverse) {
  const DType dt = GetParam();
  const std::int64_t n = 4, c = 256, b = kernels::kHadamardBlock;
  Tensor x = randn({n, c}, 30, dt, 3.0);
  Tensor y = Tensor::empty({n, c}, dt), z = Tensor::empty({n, c}, dt);
  kernels::hadamard_transform(x, b, y);
  kernels::hadamard_transform(y, b, z);
  expect_close("H(H(x)) = x", z, testing::values(x), 10 * tol_for(dt));
  // Inner products of rows (and norms of each block) are preserved.
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 0; k < n; ++k) {
      double dx = 0.0, dy = 0.0;
      for (std::int64_t j = 0; j < c; ++j) {
        dx += x.item(i * c + j) * x.item(k * c + j);
        dy += y.item(i * c + j) * y.item(k * c + j);
      }
      EXPECT_NEAR(dy, dx, 10 * tol_for(dt) * c * 9.0) << "rows " << i << ", " << k;
    }
  for (std::int64_t blk = 0; blk < c / b; ++blk) {
    double nx = 0.0, ny = 0.0;
    for (std::int64_t j = blk * b; j < (blk + 1) * b; ++j) {
      nx += x.item(j) * x.item(j);
      ny += y.item(j) * y.item(j);
    }
    EXPECT_NEAR(ny, nx, 10 * tol_for(dt) * nx) << "block " << blk << " of row 0";
  }
}

TEST_P(HadamardTest, InPlaceEqualsOutOfPlaceAndLeadingDimsAreRows) {
  const DType dt = GetParam();
  Tensor x = randn({2, 3, 64}, 31, dt);
  Tensor y = Tensor::empty({2, 3, 64}, dt);
  kernels::hadamard_transform(x, 16, y);
  Tensor z = x.clone();
  kernels::hadamard_transform(z, 16, z);
  for (std::int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(z.item(i), y.item(i));
  // Constant block -> all mass on the first coefficient: [1, ..., 1] H / sqrt(b) = sqrt(b) e_0.
  Tensor ones = Tensor::empty({1, 16}, dt), o = Tensor::empty({1, 16}, dt);
  for (std::int64_t j = 0; j < 16; ++j) {
    if (dt == DType::F64)
      ones.data<double>()[j] = 1.0;
    else
      ones.data<float>()[j] = 1.0f;
  }
  kernels::hadamard_transform(ones, 16, o);
  EXPECT_NEAR(o.item(0), 4.0, 1e-6);
  for (std::int64_t j = 1; j < 16; ++j) EXPECT_NEAR(o.item(j), 0.0, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, HadamardTest, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(Hadamard, ArgumentErrorsNameTheProblem) {
  Tensor x = randn({2, 96}, 32);
  Tensor y = Tensor::empty({2, 96}, DType::F64);
  expect_error([&] { kernels::hadamard_transform(x, 64, y); },
               {"hadamard_transform", "not a multiple of the Hadamard block size 64", "f64[2, 96]"});
  expect_error([&] { kernels::hadamard_transform(x, 12, y); }, {"block_size = 12", "power of two"});
  expect_error([&] { kernels::hadamard_transform(x, 0, y); }, {"block_size = 0"});
  Tensor y_bad = Tensor::empty({2, 32}, DType::F64);
  expect_error([&] { kernels::hadamard_transform(x, 32, y_bad); }, {"'y'", "expected shape"});
  Tensor x_i32 = Tensor::zeros({2, 32}, DType::I32);
  expect_error([&] { kernels::hadamard_transform(x_i32, 32, y_bad); }, {"expected dtype f32 or f64"});
}

}  // namespace
}  // namespace quopt
