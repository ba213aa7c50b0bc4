// CUDA sum of squares in double with a fixed reduction order (twin of kernels/host/reduce.cpp): the
// number of blocks depends only on n, each block sums a fixed strided subset and reduces it as a fixed
// tree, and one block adds the per-block partials in order. Same bits from run to run (not the host's
// bits: the grouping differs; both are fp64 sums of fp32 squares).
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/reduce.hpp"

namespace quopt::kernels::cuda {

namespace {

constexpr int kPartials = 1024;  // at most this many blocks

template <class T>
__global__ void sum_squares_partial_kernel(const T* x, std::int64_t n, double* partial) {
  __shared__ double scratch[32];
  double acc = 0.0;
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const double v = static_cast<double>(x[i]);
    acc += v * v;
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_partials_kernel(const double* partial, int count, double* out) {
  __shared__ double scratch[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) *out = acc;
}

}  // namespace

template <class T>
void sum_squares_device(const T* x, std::int64_t n, double* out) {
  if (n == 0) {
    check(cudaMemsetAsync(out, 0, sizeof(double), stream()), "cudaMemsetAsync (sum_squares)");
    return;
  }
  const int blocks = static_cast<int>(std::min<std::int64_t>(kPartials, (n + 4 * kBlock - 1) / (4 * kBlock)));
  double* partial = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&partial), sizeof(double) * blocks, stream()),
        "cudaMallocAsync (sum_squares)");
  sum_squares_partial_kernel<T><<<blocks, kBlock, 0, stream()>>>(x, n, partial);
  check_launch("sum_squares kernel");
  sum_partials_kernel<<<1, kBlock, 0, stream()>>>(partial, blocks, out);
  check_launch("sum_squares partials kernel");
  check(cudaFreeAsync(partial, stream()), "cudaFreeAsync (sum_squares)");
}

template <class T>
double sum_squares(const T* x, std::int64_t n) {
  double* d = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&d), sizeof(double), stream()), "cudaMallocAsync (sum_squares)");
  sum_squares_device(x, n, d);
  double h = 0.0;
  check(cudaMemcpyAsync(&h, d, sizeof(double), cudaMemcpyDeviceToHost, stream()), "cudaMemcpyAsync (sum_squares)");
  check(cudaFreeAsync(d, stream()), "cudaFreeAsync (sum_squares)");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (sum_squares)");
  return h;
}

template void sum_squares_device<float>(const float*, std::int64_t, double*);
template void sum_squares_device<double>(const double*, std::int64_t, double*);
template double sum_squares<float>(const float*, std::int64_t);
template double sum_squares<double>(const double*, std::int64_t);

}  // namespace quopt::kernels::cuda
