// CUDA kernels of Scion's LMOs (twin of kernels/host/lmo.cpp). Sign: element-wise. Row RMS: one block per
// row, fp64 block sums (fixed tree: deterministic, not the host's bits). Column RMS: one thread per
// column adding the rows in order with explicit roundings (no fused multiply-add), so the column sums,
// and the results, are the host's bits.
#include <cmath>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/lmo.hpp"

namespace quopt::kernels::cuda {

namespace {

template <class T>
__global__ void sign_kernel(const T* x, std::int64_t n, double f, T* y) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride())
    y[i] = static_cast<T>(x[i] > T(0) ? f : (x[i] < T(0) ? -f : 0.0));
}

template <class T>
__global__ void rms_rows_kernel(const T* x, std::int64_t rows, std::int64_t cols, double gain, double eps,
                                T* y) {
  __shared__ double scratch[32];
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    double s = 0.0;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      s += static_cast<double>(xr[c]) * static_cast<double>(xr[c]);
    s = block_sum(s, scratch);
    const double den = gain * sqrt(s / static_cast<double>(cols)) + eps;
    T* yr = y + r * cols;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      yr[c] = static_cast<T>(static_cast<double>(xr[c]) / den);
  }
}

template <class T>
__global__ void rms_cols_kernel(const T* x, std::int64_t rows, std::int64_t cols, double gain, double eps,
                                T* y) {
  for (std::int64_t c = first_index(); c < cols; c += grid_stride()) {
    double s = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) {
      const double v = static_cast<double>(x[r * cols + c]);
      s = __dadd_rn(s, __dmul_rn(v, v));
    }
    const double den = __dadd_rn(__dmul_rn(gain, sqrt(__ddiv_rn(s, static_cast<double>(rows)))), eps);
    for (std::int64_t r = 0; r < rows; ++r)
      y[r * cols + c] = static_cast<T>(__ddiv_rn(static_cast<double>(x[r * cols + c]), den));
  }
}

}  // namespace

template <class T>
void sign_scaled(const T* x, std::int64_t n, double f, T* y) {
  if (n == 0) return;
  sign_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(x, n, f, y);
  check_launch("sign_scaled kernel");
}

template <class T>
void rms_normalize(const T* x, std::int64_t rows, std::int64_t cols, int axis, double gain, double eps,
                   T* y) {
  if (rows == 0 || cols == 0) return;
  if (axis == 1) {
    const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(rows, std::int64_t{1} << 20));
    rms_rows_kernel<T><<<blocks, kBlock, 0, stream()>>>(x, rows, cols, gain, eps, y);
  } else {
    rms_cols_kernel<T><<<grid_for(cols), kBlock, 0, stream()>>>(x, rows, cols, gain, eps, y);
  }
  check_launch("rms_normalize kernel");
}

#define QUOPT_INSTANTIATE(T)                                        \
  template void sign_scaled<T>(const T*, std::int64_t, double, T*); \
  template void rms_normalize<T>(const T*, std::int64_t, std::int64_t, int, double, double, T*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::cuda
