#pragma once
// CUDA backend: device discovery, the Tensor allocator hooks and shared handles. Plain C++
// declarations (no CUDA headers), so the dispatch files compiled by the host compiler can include it.
namespace quopt::kernels::cuda {

// Number of visible CUDA devices (0 when there is no device or no usable driver).
int device_count();
// Registers the CUDA allocator with quopt::register_device_allocator when a device is visible.
// Idempotent; also run by a static initializer of device.cu. Returns whether CUDA is usable.
bool init();
// Waits for all work queued on the backend's stream (for timing).
void synchronize();

}  // namespace quopt::kernels::cuda
