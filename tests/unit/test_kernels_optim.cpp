// The matrix optimizers' primitives (kernels/optim_ops.hpp) on the host against naive references:
// moment updates, matrix helpers, blocks, and the eigendecomposition and QR by their defining
// properties (reconstruction, orthonormality, ordering), plus argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"
#include "kernels/optim_ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;
using testing::values;

class OptimOps : public ::testing::TestWithParam<DType> {
 protected:
  DType dt() const { return GetParam(); }
  double tol() const { return dt() == DType::F64 ? 1e-12 : 1e-5; }
};

TEST_P(OptimOps, MomentUpdates) {
  const std::int64_t n = 1001;
  Tensor v = randn({n}, 1, dt()), x = randn({n}, 2, dt());
  kernels::scale(v, 0.0);
  kernels::axpy(1.0, randn({n}, 3, dt(), 0.5), v);
  const std::vector<double> v0 = values(v), xs = values(x);
  Tensor sq = v.clone();
  kernels::ema(sq, x, 0.95, 0.05, true);
  kernels::ema(v, x, 0.9, 0.1, false);
  std::vector<double> want_sq(n), want(n);
  for (std::int64_t i = 0; i < n; ++i) {
    want_sq[i] = 0.95 * v0[i] + 0.05 * xs[i] * xs[i];
    want[i] = 0.9 * v0[i] + 0.1 * xs[i];
  }
  expect_close("ema square", sq, want_sq, tol());
  expect_close("ema", v, want, tol());
  // AdaGrad's sum: a = b = 1 with square is v + x^2 exactly.
  Tensor acc = Tensor::zeros({n}, dt());
  kernels::ema(acc, x, 1.0, 1.0, true);
  for (std::int64_t i = 0; i < n; ++i) {
    const double xi = x.item(i);
    ASSERT_EQ(acc.item(i), dt() == DType::F32
                               ? static_cast<double>(static_cast<float>(xi) * static_cast<float>(xi))
                               : xi * xi);
  }

  Tensor pos = sq.clone();
  kernels::ema(pos, x, 0.0, 1.0, true);  // x^2 >= 0: a second moment
  Tensor out = Tensor::empty({n}, dt());
  kernels::adam_direction(v, pos, 4.0, 1e-8, out);
  std::vector<double> want_dir(n);
  for (std::int64_t i = 0; i < n; ++i) want_dir[i] = v.item(i) / (std::sqrt(pos.item(i) * 4.0) + 1e-8);
  expect_close("adam_direction", out, want_dir, tol());
  kernels::adam_direction(v, pos, 4.0, 1e-8, v);  // in place
  expect_close("adam_direction in place", v, values(out), 0.0);
}

TEST_P(OptimOps, MatrixHelpers) {
  Tensor a = randn({5, 5}, 4, dt());
  const std::vector<double> a0 = values(a);
  kernels::add_diagonal(a, 2.5);
  std::vector<double> want = a0;
  for (int i = 0; i < 5; ++i) want[i * 6] += 2.5;
  expect_close("add_diagonal", a, want, tol());

  Tensor b = randn({3, 4}, 5, dt()), s = randn({4}, 6, dt());
  const std::vector<double> b0 = values(b);
  kernels::scale_columns(b, s);
  std::vector<double> wb(12);
  for (int i = 0; i < 12; ++i) wb[i] = b0[i] * s.item(i % 4);
  expect_close("scale_columns", b, wb, tol());

  Tensor id = Tensor::zeros({4, 4}, dt());
  kernels::add_diagonal(id, 1.0);
  EXPECT_EQ(kernels::max_abs_minus_identity(id), 0.0);
  Tensor m = id.clone();
  kernels::add_diagonal(m, -0.25);
  EXPECT_DOUBLE_EQ(kernels::max_abs_minus_identity(m), 0.25);

  Tensor f = randn({7}, 7, dt());
  Tensor other = Tensor::empty({7}, dt() == DType::F64 ? DType::F32 : DType::F64);
  kernels::convert(f, other);
  for (int i = 0; i < 7; ++i)
    EXPECT_EQ(other.item(i),
              dt() == DType::F64 ? static_cast<double>(static_cast<float>(f.item(i))) : f.item(i));
}

TEST_P(OptimOps, BlocksCopyOutAndAddIn) {
  Tensor full = randn({6, 9}, 8, dt());
  const std::vector<double> f0 = values(full);
  Tensor block = Tensor::empty({2, 4}, dt());
  kernels::copy_block(full, 3, 5, block);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(block.item(i * 4 + j), f0[(3 + i) * 9 + 5 + j]);
  kernels::add_block(full, 1, 2, block, -0.5);
  std::vector<double> want = f0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) want[(1 + i) * 9 + 2 + j] += -0.5 * block.item(i * 4 + j);
  expect_close("add_block", full, want, tol());
  expect_error([&] { kernels::copy_block(full, 5, 0, block); }, {"copy_block", "outside"});
  expect_error([&] { kernels::add_block(full, 0, 6, block, 1.0); }, {"add_block", "outside"});
}

TEST_P(OptimOps, GathersAndColumnDots) {
  Tensor a = randn({4, 6}, 17, dt()), b = randn({4, 6}, 18, dt());
  const std::vector<std::int64_t> cols = {5, 0, 0, 2, 1, 4}, rows = {3, 3, 0, 1};
  Tensor gc = Tensor::empty({4, 6}, dt()), gr = Tensor::empty({4, 6}, dt());
  kernels::gather_columns(a, cols, gc);
  kernels::gather_rows(a, rows, gr);
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t j = 0; j < 6; ++j) {
      EXPECT_EQ(gc.item(i * 6 + j), a.item(i * 6 + cols[static_cast<std::size_t>(j)]));
      EXPECT_EQ(gr.item(i * 6 + j), a.item(rows[static_cast<std::size_t>(i)] * 6 + j));
    }
  const std::vector<double> d = kernels::column_dots(a, b);
  ASSERT_EQ(d.size(), 6u);
  for (std::int64_t j = 0; j < 6; ++j) {
    double want = 0.0;
    for (std::int64_t i = 0; i < 4; ++i) want += a.item(i * 6 + j) * b.item(i * 6 + j);
    EXPECT_EQ(d[static_cast<std::size_t>(j)], want);  // the same order, in double
  }
  expect_error([&] { kernels::gather_rows(a, {0, 1, 2, 4}, gr); }, {"gather_rows", "index 4"});
  expect_error([&] { kernels::gather_columns(a, {0, 1}, gc); }, {"gather_columns", "2 indices"});
}

TEST_P(OptimOps, EighReconstructsWithOrthonormalAscendingEigenpairs) {
  const std::int64_t n = 24;
  const Tensor a = testing::random_spd(n, 9, dt());
  Tensor q = a.clone(), w = Tensor::empty({n}, dt());
  ASSERT_EQ(kernels::eigh_inplace(q, w), 0);
  for (std::int64_t j = 1; j < n; ++j) EXPECT_LE(w.item(j - 1), w.item(j));
  Tensor qw = q.clone(), rec = Tensor::empty({n, n}, dt()), qtq = Tensor::empty({n, n}, dt());
  kernels::scale_columns(qw, w);
  kernels::matmul(qw, false, q, true, rec);  // Q diag(w) Q^T
  expect_close("eigh: Q diag(w) Q^T", rec, values(a), dt() == DType::F64 ? 1e-12 : 1e-5);
  kernels::matmul(q, true, q, false, qtq);
  EXPECT_LE(kernels::max_abs_minus_identity(qtq), dt() == DType::F64 ? 1e-12 : 1e-5);
}

TEST_P(OptimOps, QrReconstructsWithOrthonormalQAndUpperR) {
  const std::int64_t m = 30, n = 12;
  const Tensor a = randn({m, n}, 10, dt());
  Tensor q = a.clone(), r = Tensor::empty({n, n}, dt());
  kernels::fill(r, 7.0);  // below the diagonal must be written as zeros
  ASSERT_EQ(kernels::qr_inplace(q, r), 0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < i; ++j) EXPECT_EQ(r.item(i * n + j), 0.0);
  Tensor rec = Tensor::empty({m, n}, dt()), qtq = Tensor::empty({n, n}, dt());
  kernels::matmul(q, false, r, false, rec);
  expect_close("qr: Q R", rec, values(a), dt() == DType::F64 ? 1e-12 : 1e-5);
  kernels::matmul(q, true, q, false, qtq);
  EXPECT_LE(kernels::max_abs_minus_identity(qtq), dt() == DType::F64 ? 1e-12 : 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, OptimOps, ::testing::Values(DType::F64, DType::F32),
                         testing::dtype_param_name);

TEST(OptimOpsErrors, ShapesAndScalars) {
  Tensor a = randn({3, 4}, 11, DType::F32), w = Tensor::empty({3}, DType::F32);
  expect_error([&] { kernels::eigh_inplace(a, w); }, {"eigh_inplace", "square"});
  Tensor wide = randn({3, 5}, 12, DType::F32), r = Tensor::empty({5, 5}, DType::F32);
  expect_error([&] { kernels::qr_inplace(wide, r); }, {"qr_inplace", "rows >= columns"});
  Tensor v = randn({4}, 13, DType::F32), x = randn({5}, 14, DType::F32);
  expect_error([&] { kernels::ema(v, x, 0.9, 0.1, false); }, {"ema", "same number of elements"});
  Tensor x4 = randn({4}, 15, DType::F32);
  expect_error([&] { kernels::ema(v, x4, NAN, 0.1, false); }, {"ema", "finite"});
  Tensor s = randn({3}, 16, DType::F32);
  expect_error([&] { kernels::scale_columns(a, s); }, {"scale_columns", "expected shape"});
}

}  // namespace
}  // namespace quopt
