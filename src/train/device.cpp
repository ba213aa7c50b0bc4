#include "train/device.hpp"

#include "core/error.hpp"
#include "core/log.hpp"
#include "kernels/backend.hpp"

namespace quopt {

Device select_train_device(const RunConfig& cfg, MPI_Comm world) {
  const TrainConfig& tc = cfg.train;
  if (tc.device != "cuda") {
    QUOPT_CHECK(tc.precision == "fp32", "train.precision = \"", tc.precision,
                "\" applies to train.device = \"cuda\" only; the host backend computes in fp32");
    return Device::Host;
  }
  // Pipeline links between GPUs (the activations and their gradients of each micro-batch, rank to rank)
  // are not implemented: the CUDA path is data-parallel only.
  QUOPT_CHECK(
      cfg.parallel.pipeline_stages == 1,
      "train.device = \"cuda\" runs data-parallel only: "
      "parallel.pipeline_stages = ",
      cfg.parallel.pipeline_stages,
      " needs pipeline links between GPUs, which are not implemented; set parallel.pipeline_stages = 1 "
      "(every rank holds the whole model on its GPU) or train on the host (train.device = \"cpu\")");
  int rank = 0;
  MPI_Comm_rank(world, &rank);
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  // One GPU per rank: NCCL refuses two ranks of one communicator on the same GPU.
  const int gpus = kernels::cuda_device_count();
  QUOPT_CHECK(gpus == 0 || local_size <= gpus, "train.device = \"cuda\" runs one rank per GPU, but ",
              local_size, " ranks share a node with ", gpus, " visible GPU", gpus == 1 ? "" : "s",
              "; start at most one rank per GPU (e.g. srun --ntasks-per-node=", gpus, ")");
  kernels::cuda_select_device(local_rank);
  kernels::init_backends();
  QUOPT_CHECK(device_available(Device::Cuda), "train.device = \"cuda\" but no CUDA device is usable here");
  kernels::set_matmul_precision(tc.precision == "bf16" ? kernels::MatmulPrecision::BF16
                                                       : kernels::MatmulPrecision::FP32);
  log_info("device: ", kernels::cuda_device_name(), " (train.precision = ", tc.precision, ", local rank ",
           local_rank, " of ", local_size, ")");
  return Device::Cuda;
}

}  // namespace quopt
