// CUDA MLP activation kernels: grid-stride loops over n contiguous elements.
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/mlp.hpp"

namespace quopt::kernels::cuda {

namespace {

template <class T>
__global__ void relu2_forward_kernel(const T* x, T* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const T r = x[i] > T(0) ? x[i] : T(0);
    y[i] = r * r;
  }
}

}  // namespace

template <class T>
void relu2_forward(const T* x, T* y, std::int64_t n) {
  if (n == 0) return;
  relu2_forward_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(x, y, n);
  check_launch("relu2_forward kernel");
}

template void relu2_forward<float>(const float*, float*, std::int64_t);
template void relu2_forward<double>(const double*, double*, std::int64_t);

}  // namespace quopt::kernels::cuda
