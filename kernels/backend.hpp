#pragma once
// Backend start-up: registers the allocators of the compiled-in device backends (CUDA) with the
// Tensor layer. Meant to be called once at start-up (e.g. by quopt::Runtime), after which
// quopt::device_available(Device::Cuda) tells whether CUDA tensors can be created.
namespace quopt::kernels {

// Idempotent; a no-op in a build without the CUDA backend or on a machine without a GPU.
void init_backends();
// Number of visible CUDA devices; 0 in a CPU-only build.
int cuda_device_count();

}  // namespace quopt::kernels
