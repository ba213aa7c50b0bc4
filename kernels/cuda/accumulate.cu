// CUDA gradient accumulation in fp64 (twin of kernels/host/accumulate.cpp): the same per-element
// arithmetic, so the accumulated gradients are the host's bits.
#include "kernels/cuda/accumulate.hpp"
#include "kernels/cuda/check.cuh"

namespace quopt::kernels::cuda {

namespace {

__global__ void fold_kernel(float* x, double* acc, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    acc[i] += static_cast<double>(x[i]);
    x[i] = 0.0f;
  }
}

__global__ void unfold_kernel(double* acc, float* x, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    x[i] = static_cast<float>(acc[i]);
    acc[i] = 0.0;
  }
}

}  // namespace

void fold_f64(float* x, double* acc, std::int64_t n) {
  if (n == 0) return;
  fold_kernel<<<grid_for(n), kBlock, 0, stream()>>>(x, acc, n);
  check_launch("fold_f64 kernel");
}

void unfold_f64(double* acc, float* x, std::int64_t n) {
  if (n == 0) return;
  unfold_kernel<<<grid_for(n), kBlock, 0, stream()>>>(acc, x, n);
  check_launch("unfold_f64 kernel");
}

}  // namespace quopt::kernels::cuda
