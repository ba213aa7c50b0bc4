// CUDA MLP activation kernels (twins of kernels/host/mlp.cpp): grid-stride loops over n contiguous
// elements, the same arithmetic in the same order as the host.
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/mlp.hpp"

namespace quopt::kernels::cuda {

namespace {

// 1 / (1 + e^-g): for g -> -inf the exponential overflows to inf and the result is 0, never NaN.
template <class T>
__device__ inline T sigmoid(T g) {
  return T(1) / (T(1) + exp(-g));
}

template <class T>
__global__ void relu2_forward_kernel(const T* x, T* y, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const T r = x[i] > T(0) ? x[i] : T(0);
    y[i] = r * r;
  }
}

template <class T>
__global__ void relu2_backward_kernel(const T* dy, const T* x, T* dx, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const T r = x[i] > T(0) ? x[i] : T(0);
    dx[i] = T(2) * r * dy[i];
  }
}

template <class T>
__global__ void swiglu_forward_kernel(const T* gate, const T* up, T* y, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const T g = gate[i];
    y[i] = g * sigmoid(g) * up[i];
  }
}

template <class T>
__global__ void swiglu_backward_kernel(const T* dy, const T* gate, const T* up, T* dgate, T* dup,
                                       std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const T g = gate[i], u = up[i], d = dy[i];  // every input read before the writes (aliasing allowed)
    const T s = sigmoid(g);
    dgate[i] = d * u * s * (T(1) + g * (T(1) - s));
    dup[i] = d * g * s;
  }
}

}  // namespace

template <class T>
void relu2_forward(const T* x, T* y, std::int64_t n) {
  if (n == 0) return;
  relu2_forward_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(x, y, n);
  check_launch("relu2_forward kernel");
}

template <class T>
void relu2_backward(const T* dy, const T* x, T* dx, std::int64_t n) {
  if (n == 0) return;
  relu2_backward_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(dy, x, dx, n);
  check_launch("relu2_backward kernel");
}

template <class T>
void swiglu_forward(const T* gate, const T* up, T* y, std::int64_t n) {
  if (n == 0) return;
  swiglu_forward_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(gate, up, y, n);
  check_launch("swiglu_forward kernel");
}

template <class T>
void swiglu_backward(const T* dy, const T* gate, const T* up, T* dgate, T* dup, std::int64_t n) {
  if (n == 0) return;
  swiglu_backward_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(dy, gate, up, dgate, dup, n);
  check_launch("swiglu_backward kernel");
}

#define QUOPT_INSTANTIATE(T)                                             \
  template void relu2_forward<T>(const T*, T*, std::int64_t);            \
  template void relu2_backward<T>(const T*, const T*, T*, std::int64_t); \
  template void swiglu_forward<T>(const T*, const T*, T*, std::int64_t); \
  template void swiglu_backward<T>(const T*, const T*, const T*, T*, T*, std::int64_t);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::cuda
