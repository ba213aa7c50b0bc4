#pragma once
// The CUDA backend's compute stream (defined in device.cu), for its host-compiled files (.cpp) as well as
// its .cu files: one non-blocking stream per process that every kernel, library call, stream-ordered
// allocation and copy is queued on.
#include <cuda_runtime_api.h>

namespace quopt::kernels::cuda {

cudaStream_t stream();

}  // namespace quopt::kernels::cuda
