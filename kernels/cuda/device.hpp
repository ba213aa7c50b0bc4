#pragma once
// CUDA backend: device discovery, the Tensor allocator hooks and shared handles. Plain C++
// declarations (no CUDA headers), so the dispatch files compiled by the host compiler can include it.
#include <string>

namespace quopt::kernels::cuda {

// Number of visible CUDA devices (0 when there is no device or no usable driver).
int device_count();
// Registers the CUDA allocator with quopt::register_device_allocator when a device is visible.
// Idempotent; also run by a static initializer of device.cu. Returns whether CUDA is usable.
bool init();
// One GPU per rank: selects device local_rank % device_count() for this process (before any allocation).
void select_device(int local_rank);
// Waits for all work queued on the backend's stream (for timing and before reading results).
void synchronize();
// The current device's name (e.g. "NVIDIA H100 80GB HBM3").
std::string device_name();

}  // namespace quopt::kernels::cuda
