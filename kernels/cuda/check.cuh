#pragma once
// Internal to the CUDA backend (.cu files only): error checks that turn CUDA / cuBLAS failures into
// quopt::Error, the shared cuBLAS handle and stream, and the launch geometry of grid-stride kernels.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/error.hpp"

namespace quopt::kernels::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    fail("CUDA error in ", what, ": ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

inline void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS error in ", what, ": ", cublasGetStatusString(s));
}

// Checks the launch of the kernel just queued (configuration errors; execution errors surface at the
// next synchronising call).
inline void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

// The stream every backend kernel and cuBLAS call is queued on (the legacy default stream, so host <->
// device copies through cudaMemcpy are ordered with the kernels).
inline cudaStream_t stream() {
  return nullptr;
}

// The process's cuBLAS handle, created on first use (defined in device.cu).
cublasHandle_t cublas();

// Threads per block of the elementwise kernels: a multiple of the 32-thread warp in the 128-256 range
// the CUDA C++ Best Practices Guide recommends as a starting point for memory-bound kernels.
inline constexpr int kBlock = 256;
// Blocks for n elements with a grid-stride loop; capped so huge tensors reuse blocks.
inline unsigned grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, std::int64_t{1} << 20));
}

}  // namespace quopt::kernels::cuda
