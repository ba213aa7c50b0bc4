#pragma once
// Internal to the CUDA backend (.cu files only): error checks that turn CUDA / cuBLAS / cuSOLVER
// failures into quopt::Error, the backend's stream and library handles, and the launch geometry of
// grid-stride kernels.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <cstdint>

#include "core/error.hpp"
#include "kernels/cuda/stream.hpp"

namespace quopt::kernels::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    fail("CUDA error in ", what, ": ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

inline void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS error in ", what, ": ", cublasGetStatusString(s));
}

inline void check(cusolverStatus_t s, const char* what) {
  if (s != CUSOLVER_STATUS_SUCCESS) fail("cuSOLVER error in ", what, ": status ", static_cast<int>(s));
}

// Checks the launch of the kernel just queued (configuration errors; execution errors surface at the
// next synchronising call).
inline void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

// stream() (kernels/cuda/stream.hpp): work on it is ordered, so the step needs no device-wide
// synchronisation; the host waits on it only where it reads a result (a loss, a norm, a copy to the host).

// The process's library handles, created on first use and bound to stream() (defined in device.cu).
cublasHandle_t cublas();
cublasLtHandle_t cublas_lt();
cusolverDnHandle_t cusolver();

// Threads per block of the elementwise kernels: a multiple of the 32-thread warp in the 128-256 range
// the CUDA C++ Best Practices Guide recommends as a starting point for memory-bound kernels.
inline constexpr int kBlock = 256;
// Blocks for n elements with a grid-stride loop; capped so huge tensors reuse blocks.
inline unsigned grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, std::int64_t{1} << 20));
}

__device__ inline std::int64_t first_index() {
  return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
}
__device__ inline std::int64_t grid_stride() {
  return static_cast<std::int64_t>(gridDim.x) * blockDim.x;
}

}  // namespace quopt::kernels::cuda
