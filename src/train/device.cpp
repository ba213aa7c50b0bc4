#include "train/device.hpp"

#include "core/error.hpp"
#include "core/log.hpp"
#include "kernels/backend.hpp"

namespace quopt {

Device select_train_device(const TrainConfig& tc, MPI_Comm world) {
  if (tc.device != "cuda") {
    QUOPT_CHECK(tc.precision == "fp32", "train.precision = \"", tc.precision,
                "\" applies to train.device = \"cuda\" only; the host backend computes in fp32");
    return Device::Host;
  }
  int size = 1, rank = 0;
  MPI_Comm_size(world, &size);
  MPI_Comm_rank(world, &rank);
  QUOPT_CHECK(size == 1, "train.device = \"cuda\" runs on one rank for now (", size,
              " ranks started): the NCCL gradient all-reduce and pipeline links are not implemented yet");
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int local_rank = 0;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_free(&node);
  kernels::cuda_select_device(local_rank);
  kernels::init_backends();
  QUOPT_CHECK(device_available(Device::Cuda), "train.device = \"cuda\" but no CUDA device is usable here");
  kernels::set_matmul_precision(tc.precision == "bf16" ? kernels::MatmulPrecision::BF16
                                                       : kernels::MatmulPrecision::FP32);
  log_info("device: ", kernels::cuda_device_name(), " (train.precision = ", tc.precision, ")");
  return Device::Cuda;
}

}  // namespace quopt
