#pragma once
// Where a run computes: train.device and train.precision applied to this rank.
#include <mpi.h>

#include "core/tensor.hpp"
#include "io/run_config.hpp"

namespace quopt {

// Device::Host for train.device = "cpu". For "cuda": binds this rank to a GPU (node-local rank modulo
// the GPUs visible), sets the GEMM precision (train.precision) and returns Device::Cuda. The CUDA path
// runs one rank (no NCCL collectives yet: docs/cuda.md); more ranks, a CPU-only build or no GPU are
// errors that say so. Collective over world.
Device select_train_device(const TrainConfig& tc, MPI_Comm world);

}  // namespace quopt
