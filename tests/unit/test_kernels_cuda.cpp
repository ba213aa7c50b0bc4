// CUDA backend against the host backend on random inputs (skipped without a CUDA build or a GPU).
#include <gtest/gtest.h>

#include <limits>

#include "kernel_test_util.hpp"
#include "kernels/backend.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

using testing::expect_close;
using testing::expect_error;
using testing::randn;
using testing::tol_for;

class CudaVsHost : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    kernels::init_backends();
    if (kernels::cuda_device_count() == 0 || !device_available(Device::Cuda)) {
      GTEST_SKIP() << "no CUDA backend in this build or no visible GPU";
    }
  }
  static Tensor dev(const Tensor& t) { return t.to(Device::Cuda); }
  static Tensor host(const Tensor& t) { return t.to(Device::Host); }
};

TEST_P(CudaVsHost, Matmul) {
  const DType dt = GetParam();
  const std::int64_t m = 33, n = 17, k = 65;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = randn(ta ? Shape{k, m} : Shape{m, k}, 1, dt),
             b = randn(tb ? Shape{n, k} : Shape{k, n}, 2, dt);
      Tensor c = randn({m, n}, 3, dt);
      Tensor dc = dev(c);
      kernels::matmul(a, ta != 0, b, tb != 0, c, 0.5, 2.0);
      kernels::matmul(dev(a), ta != 0, dev(b), tb != 0, dc, 0.5, 2.0);
      expect_close(cat("cuda matmul ta=", ta, " tb=", tb), host(dc), testing::values(c), tol_for(dt));
    }
  }
}

TEST_P(CudaVsHost, MatmulBatchedAndStats) {
  const DType dt = GetParam();
  Tensor a = randn({3, 8, 5}, 4, dt), b = randn({3, 7, 5}, 5, dt);
  Tensor c = Tensor::empty({3, 8, 7}, dt);
  Tensor dc = Tensor::empty({3, 8, 7}, dt, Device::Cuda);
  kernels::fill(dc, std::numeric_limits<double>::quiet_NaN());  // beta = 0 must overwrite
  kernels::matmul_batched(a, false, b, true, c);
  kernels::gemm_stats_reset();
  kernels::gemm_stats_enable(true);
  kernels::matmul_batched(dev(a), false, dev(b), true, dc);
  kernels::gemm_stats_enable(false);
  EXPECT_DOUBLE_EQ(kernels::gemm_stats().flops, 2.0 * 3 * 8 * 7 * 5);
  expect_close("cuda matmul_batched", host(dc), testing::values(c), tol_for(dt));
}

TEST_P(CudaVsHost, ElementwiseAndRelu2) {
  const DType dt = GetParam();
  const std::int64_t n = 100003;  // not a multiple of the block size
  Tensor a = randn({n}, 6, dt), b = randn({n}, 7, dt);
  Tensor da = dev(a), db = dev(b);
  Tensor out = Tensor::empty({n}, dt), dout = Tensor::empty({n}, dt, Device::Cuda);
  kernels::add(a, b, out);
  kernels::add(da, db, dout);
  expect_close("cuda add", host(dout), testing::values(out), tol_for(dt));
  kernels::axpy(-0.75, a, b);
  kernels::axpy(-0.75, da, db);
  expect_close("cuda axpy", host(db), testing::values(b), tol_for(dt));
  kernels::scale(a, 3.0);
  kernels::scale(da, 3.0);
  expect_close("cuda scale", host(da), testing::values(a), tol_for(dt));
  kernels::relu2_forward(a, out);
  kernels::relu2_forward(da, dout);
  expect_close("cuda relu2_forward", host(dout), testing::values(out), tol_for(dt));
  kernels::fill(da, -2.0);
  kernels::fill(a, -2.0);
  expect_close("cuda fill", host(da), testing::values(a), 0.0);
}

TEST_P(CudaVsHost, MixedDevicesAndMissingOpsAreErrors) {
  const DType dt = GetParam();
  Tensor a = randn({4}, 8, dt);
  Tensor da = dev(a);
  expect_error([&] { kernels::add(a, da, a); }, {"add", "same device"});
  expect_error([&] { kernels::sum_squares(da); }, {"sum_squares", "CUDA backend"});
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaVsHost, ::testing::Values(DType::F32, DType::F64),
                         testing::dtype_param_name);

}  // namespace
}  // namespace quopt
