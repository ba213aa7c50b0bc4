#pragma once
// Backend start-up: registers the allocators of the compiled-in device backends (CUDA) with the
// Tensor layer. Meant to be called once at start-up (e.g. by quopt::Runtime), after which
// quopt::device_available(Device::Cuda) tells whether CUDA tensors can be created.
#include <string>

namespace quopt::kernels {

// Idempotent; a no-op in a build without the CUDA backend or on a machine without a GPU.
void init_backends();
// Number of visible CUDA devices; 0 in a CPU-only build.
int cuda_device_count();
// One GPU per rank: binds this process to CUDA device local_rank % cuda_device_count(). Call before the
// first CUDA tensor is created. Fails with a clear message when no device is visible or CUDA is not built.
void cuda_select_device(int local_rank);
// Name of the selected CUDA device ("" in a CPU-only build).
std::string cuda_device_name();
// Waits for the CUDA backend's queued work (no-op in a CPU-only build); for timing.
void cuda_synchronize();

// How f32 GEMMs on the CUDA backend compute: FP32 (strict fp32, the default; the mode the gpu tests
// compare with the host) or BF16 (inputs rounded to bf16 on the tensor cores, fp32 accumulation, fp32
// storage: the mixed-precision mode of the training step). The host backend always computes in fp32.
enum class MatmulPrecision { FP32, BF16 };
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();

}  // namespace quopt::kernels
