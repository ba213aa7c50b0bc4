// CUDA RMSNorm forward/backward over the last dimension (twin of kernels/host/rmsnorm.cpp), used for
// the block norms, the final norm and QK-norm. One block per row for the row-wise parts (sums of squares
// in double, tree order fixed by the launch shape); the weight gradient is one thread per column adding
// the rows in order in double, exactly as the host does, so it is the same bits as the host's.
#include <cmath>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/rmsnorm.hpp"

namespace quopt::kernels::cuda {

namespace {

template <class T>
__global__ void rmsnorm_forward_kernel(const T* x, const T* w, double eps, std::int64_t c, T* y, T* rstd) {
  __shared__ double scratch[32];
  const std::int64_t i = blockIdx.x;
  const T* xi = x + i * c;
  double ss = 0.0;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) ss += static_cast<double>(xi[j]) * xi[j];
  ss = block_sum(ss, scratch);
  const double r = 1.0 / sqrt(ss / static_cast<double>(c) + eps);
  if (threadIdx.x == 0) rstd[i] = static_cast<T>(r);
  T* yi = y + i * c;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x)
    yi[j] = static_cast<T>(static_cast<double>(xi[j]) * r * static_cast<double>(w[j]));
}

template <class T>
__global__ void rmsnorm_backward_dx_kernel(const T* dy, const T* x, const T* w, const T* rstd, std::int64_t c,
                                           T* dx) {
  __shared__ double scratch[32];
  const std::int64_t i = blockIdx.x;
  const double r = static_cast<double>(rstd[i]);
  const T* dyi = dy + i * c;
  const T* xi = x + i * c;
  double s = 0.0;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x)
    s += static_cast<double>(dyi[j]) * static_cast<double>(w[j]) * static_cast<double>(xi[j]);
  s = block_sum(s, scratch);
  const double coef = r * r * s / static_cast<double>(c);
  T* dxi = dx + i * c;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const double g = static_cast<double>(w[j]) * static_cast<double>(dyi[j]);
    dxi[j] = static_cast<T>(r * (g - static_cast<double>(xi[j]) * coef));
  }
}

// dw[j] += sum_i dy[i, j] x[i, j] rstd[i], the rows in order.
template <class T>
__device__ void rmsnorm_dw_column(const T* dy, const T* x, const T* rstd, std::int64_t n, std::int64_t c,
                                  std::int64_t j, T* dw) {
  // Explicit roundings (__d*_rn): nvcc would otherwise fuse the multiply and add into an FMA, which
  // rounds once instead of twice and gives other bits than the host's (x86-64 code without FMA).
  double acc = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double t =
        __dmul_rn(__dmul_rn(static_cast<double>(dy[i * c + j]), static_cast<double>(x[i * c + j])),
                  static_cast<double>(rstd[i]));
    acc = __dadd_rn(acc, t);
  }
  dw[j] = static_cast<T>(__dadd_rn(static_cast<double>(dw[j]), acc));
}

template <class T>
__global__ void rmsnorm_backward_dw_kernel(const T* dy, const T* x, const T* rstd, std::int64_t n,
                                           std::int64_t c, T* dw) {
  for (std::int64_t j = first_index(); j < c; j += grid_stride()) rmsnorm_dw_column(dy, x, rstd, n, c, j, dw);
}

}  // namespace

template <class T>
void rmsnorm_forward(const T* x, const T* w, double eps, std::int64_t n, std::int64_t c, T* y, T* rstd) {
  if (n == 0) return;
  rmsnorm_forward_kernel<T><<<static_cast<unsigned>(n), kBlock, 0, stream()>>>(x, w, eps, c, y, rstd);
  check_launch("rmsnorm_forward kernel");
}

template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, std::int64_t n, std::int64_t c,
                      T* dx, T* dw) {
  if (n == 0 || c == 0) return;
  // dw first: dx may not alias dy or x, but the order keeps the host's read-before-write sequence.
  rmsnorm_backward_dw_kernel<T><<<grid_for(c), kBlock, 0, stream()>>>(dy, x, rstd, n, c, dw);
  check_launch("rmsnorm_backward dw kernel");
  rmsnorm_backward_dx_kernel<T><<<static_cast<unsigned>(n), kBlock, 0, stream()>>>(dy, x, w, rstd, c, dx);
  check_launch("rmsnorm_backward dx kernel");
}

#define QUOPT_INSTANTIATE(T)                                                                                \
  template void rmsnorm_forward<T>(const T*, const T*, double, std::int64_t, std::int64_t, T*, T*);         \
  template void rmsnorm_backward<T>(const T*, const T*, const T*, const T*, std::int64_t, std::int64_t, T*, \
                                    T*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::cuda
