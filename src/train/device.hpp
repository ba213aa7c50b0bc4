#pragma once
// Where a run computes: train.device and train.precision applied to this rank.
#include <mpi.h>

#include "core/tensor.hpp"
#include "io/run_config.hpp"

namespace quopt {

// Device::Host for train.device = "cpu". For "cuda": binds this rank to a GPU (node-local rank; one rank
// per GPU), sets the GEMM precision (train.precision) and returns Device::Cuda. Data-parallel ranks reduce
// over NCCL (kernels/collectives.hpp); pipeline stages on GPUs, more ranks on a node than GPUs, a
// CPU-only build or no GPU are errors that say so. Collective over world.
Device select_train_device(const RunConfig& cfg, MPI_Comm world);

}  // namespace quopt
