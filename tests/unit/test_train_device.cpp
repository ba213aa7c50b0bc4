// train.device / train.precision (train/device.hpp): the host default, and the clear errors for what the
// CUDA path does not do (bf16 on the host, pipeline stages on GPUs, a build or machine without a GPU).
#include <gtest/gtest.h>
#include <mpi.h>

#include "io/run_config.hpp"
#include "kernels/backend.hpp"
#include "train/device.hpp"
#include "unit/kernel_test_util.hpp"

namespace quopt {
namespace {

using testing::expect_error;

TEST(TrainDevice, CpuIsTheHostAndBf16NeedsCuda) {
  RunConfig rc;
  EXPECT_EQ(select_train_device(rc, MPI_COMM_WORLD), Device::Host);
  rc.train.precision = "bf16";
  expect_error([&] { select_train_device(rc, MPI_COMM_WORLD); }, {"train.precision", "bf16", "cuda"});
}

TEST(TrainDevice, PipelineStagesOnGpusAreRefused) {
  RunConfig rc;
  rc.train.device = "cuda";
  rc.parallel.pipeline_stages = 2;
  expect_error([&] { select_train_device(rc, MPI_COMM_WORLD); },
               {"parallel.pipeline_stages = 2", "pipeline links", "parallel.pipeline_stages = 1"});
}

TEST(TrainDevice, CudaWithoutAGpuSaysSo) {
  if (kernels::cuda_device_count() > 0) GTEST_SKIP() << "a GPU is visible: the error path does not apply";
  RunConfig rc;
  rc.train.device = "cuda";
  // A CPU-only build: "needs the CUDA backend"; a CUDA build on a machine without a GPU: "no CUDA device".
  expect_error([&] { select_train_device(rc, MPI_COMM_WORLD); }, {"train.device"});
}

}  // namespace
}  // namespace quopt
