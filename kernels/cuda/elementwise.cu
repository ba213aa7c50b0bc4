// CUDA elementwise kernels: grid-stride loops over n contiguous elements.
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/elementwise.hpp"

namespace quopt::kernels::cuda {

namespace {

template <class T>
__global__ void add_kernel(const T* a, const T* b, T* out, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) out[i] = a[i] + b[i];
}

template <class T>
__global__ void axpy_kernel(T alpha, const T* x, T* y, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) y[i] += alpha * x[i];
}

template <class T>
__global__ void scale_kernel(T* x, T s, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) x[i] *= s;
}

template <class T>
__global__ void fill_kernel(T* x, T v, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) x[i] = v;
}

}  // namespace

template <class T>
void add(const T* a, const T* b, T* out, std::int64_t n) {
  if (n == 0) return;
  add_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(a, b, out, n);
  check_launch("add kernel");
}

template <class T>
void axpy(double alpha, const T* x, T* y, std::int64_t n) {
  if (n == 0) return;
  axpy_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(static_cast<T>(alpha), x, y, n);
  check_launch("axpy kernel");
}

template <class T>
void scale(T* x, double s, std::int64_t n) {
  if (n == 0) return;
  scale_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(x, static_cast<T>(s), n);
  check_launch("scale kernel");
}

template <class T>
void fill(T* x, double value, std::int64_t n) {
  if (n == 0) return;
  fill_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(x, static_cast<T>(value), n);
  check_launch("fill kernel");
}

#define QUOPT_INSTANTIATE(T)                                  \
  template void add<T>(const T*, const T*, T*, std::int64_t); \
  template void axpy<T>(double, const T*, T*, std::int64_t);  \
  template void scale<T>(T*, double, std::int64_t);           \
  template void fill<T>(T*, double, std::int64_t);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::cuda
