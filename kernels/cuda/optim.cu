// CUDA kernels of the matrix optimizers' element-wise and matrix primitives (twin of
// kernels/host/optim.cpp). The moment updates round every product and sum explicitly (__f*_rn /
// __d*_rn: no fused multiply-add), so their results are the host loops' bits.
#include <cmath>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/optim.hpp"
#include "kernels/cuda/rounding.cuh"

namespace quopt::kernels::cuda {

namespace {

template <class T>
__global__ void ema_kernel(T* v, const T* x, std::int64_t n, T a, T b, bool square) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const T xi = square ? mul_rn(x[i], x[i]) : x[i];
    v[i] = add_rn(mul_rn(a, v[i]), mul_rn(b, xi));
  }
}

template <class T>
__global__ void adam_direction_kernel(const T* m, const T* v, std::int64_t n, T c, T eps, T* out) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride())
    out[i] = div_rn(m[i], add_rn(sqrt_rn(mul_rn(v[i], c)), eps));
}

template <class T>
__global__ void add_diagonal_kernel(T* a, std::int64_t n, T value) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) a[i * n + i] += value;
}

template <class T>
__global__ void scale_columns_kernel(T* a, std::int64_t rows, std::int64_t cols, const T* s) {
  for (std::int64_t e = first_index(); e < rows * cols; e += grid_stride()) a[e] *= s[e % cols];
}

template <class T>
__global__ void max_abs_minus_identity_kernel(const T* a, std::int64_t n, double* out) {
  __shared__ double scratch[32];
  double m = 0.0;
  for (std::int64_t e = threadIdx.x; e < n * n; e += blockDim.x)
    m = fmax(m, fabs(static_cast<double>(a[e]) - (e / n == e % n ? 1.0 : 0.0)));
  m = block_max(m, scratch, 0.0);
  if (threadIdx.x == 0) *out = m;
}

template <class S, class D>
__global__ void convert_kernel(const S* src, std::int64_t n, D* dst) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) dst[i] = static_cast<D>(src[i]);
}

template <class T>
__global__ void block_kernel(T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0,
                             std::int64_t rows, std::int64_t cols, T* block, T alpha, bool add) {
  for (std::int64_t e = first_index(); e < rows * cols; e += grid_stride()) {
    T& f = full[(row0 + e / cols) * ld + col0 + e % cols];
    if (add)
      f = add_rn(f, mul_rn(alpha, block[e]));
    else
      block[e] = f;
  }
}

template <class T>
__global__ void gather_kernel(const T* a, std::int64_t rows, std::int64_t cols, const std::int64_t* idx,
                              bool columns, T* out) {
  for (std::int64_t e = first_index(); e < rows * cols; e += grid_stride()) {
    const std::int64_t i = e / cols, j = e % cols;
    out[e] = columns ? a[i * cols + idx[j]] : a[idx[i] * cols + j];
  }
}

// One thread per column, the rows in order with explicit roundings: the host's bits.
template <class T>
__global__ void column_dots_kernel(const T* a, const T* b, std::int64_t rows, std::int64_t cols, double* d) {
  for (std::int64_t j = first_index(); j < cols; j += grid_stride()) {
    double s = 0.0;
    for (std::int64_t i = 0; i < rows; ++i)
      s = __dadd_rn(s, __dmul_rn(static_cast<double>(a[i * cols + j]), static_cast<double>(b[i * cols + j])));
    d[j] = s;
  }
}

}  // namespace

template <class T>
void gather(const T* a, std::int64_t rows, std::int64_t cols, const std::int64_t* idx, bool columns, T* out) {
  const std::int64_t n_idx = columns ? cols : rows;
  if (rows * cols == 0) return;
  std::int64_t* d_idx = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&d_idx), sizeof(std::int64_t) * n_idx, stream()),
        "cudaMallocAsync");
  check(cudaMemcpyAsync(d_idx, idx, sizeof(std::int64_t) * n_idx, cudaMemcpyHostToDevice, stream()),
        "cudaMemcpyAsync (gather indices)");
  gather_kernel<T><<<grid_for(rows * cols), kBlock, 0, stream()>>>(a, rows, cols, d_idx, columns, out);
  check_launch("gather kernel");
  check(cudaFreeAsync(d_idx, stream()), "cudaFreeAsync");
  // The indices come from pageable host memory the caller may free on return: wait for the copy.
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (gather indices)");
}

template <class T>
void column_dots(const T* a, const T* b, std::int64_t rows, std::int64_t cols, double* d) {
  if (cols == 0) return;
  double* dd = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&dd), sizeof(double) * cols, stream()), "cudaMallocAsync");
  column_dots_kernel<T><<<grid_for(cols), kBlock, 0, stream()>>>(a, b, rows, cols, dd);
  check_launch("column_dots kernel");
  check(cudaMemcpyAsync(d, dd, sizeof(double) * cols, cudaMemcpyDeviceToHost, stream()), "cudaMemcpyAsync");
  check(cudaFreeAsync(dd, stream()), "cudaFreeAsync");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (column_dots)");
}

template <class T>
void ema(T* v, const T* x, std::int64_t n, double a, double b, bool square) {
  if (n == 0) return;
  ema_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(v, x, n, static_cast<T>(a), static_cast<T>(b), square);
  check_launch("ema kernel");
}

template <class T>
void adam_direction(const T* m, const T* v, std::int64_t n, double c, double eps, T* out) {
  if (n == 0) return;
  adam_direction_kernel<T>
      <<<grid_for(n), kBlock, 0, stream()>>>(m, v, n, static_cast<T>(c), static_cast<T>(eps), out);
  check_launch("adam_direction kernel");
}

template <class T>
void add_diagonal(T* a, std::int64_t n, double value) {
  if (n == 0) return;
  add_diagonal_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(a, n, static_cast<T>(value));
  check_launch("add_diagonal kernel");
}

template <class T>
void scale_columns(T* a, std::int64_t rows, std::int64_t cols, const T* s) {
  if (rows * cols == 0) return;
  scale_columns_kernel<T><<<grid_for(rows * cols), kBlock, 0, stream()>>>(a, rows, cols, s);
  check_launch("scale_columns kernel");
}

// One block (a read by the host follows: matrices here are preconditioner factors, n <= a few thousand).
template <class T>
double max_abs_minus_identity(const T* a, std::int64_t n) {
  if (n == 0) return 0.0;
  double* d = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&d), sizeof(double), stream()), "cudaMallocAsync");
  max_abs_minus_identity_kernel<T><<<1, 1024, 0, stream()>>>(a, n, d);
  check_launch("max_abs_minus_identity kernel");
  double h = 0.0;
  check(cudaMemcpyAsync(&h, d, sizeof(double), cudaMemcpyDeviceToHost, stream()), "cudaMemcpyAsync");
  check(cudaFreeAsync(d, stream()), "cudaFreeAsync");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (max_abs_minus_identity)");
  return h;
}

template <class S, class D>
void convert(const S* src, std::int64_t n, D* dst) {
  if (n == 0) return;
  convert_kernel<S, D><<<grid_for(n), kBlock, 0, stream()>>>(src, n, dst);
  check_launch("convert kernel");
}

template <class T>
void copy_block(const T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0, std::int64_t rows,
                std::int64_t cols, T* block) {
  if (rows * cols == 0) return;
  block_kernel<T><<<grid_for(rows * cols), kBlock, 0, stream()>>>(const_cast<T*>(full), ld, row0, col0, rows,
                                                                  cols, block, T(0), false);
  check_launch("copy_block kernel");
}

template <class T>
void add_block(T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0, std::int64_t rows,
               std::int64_t cols, const T* block, double alpha) {
  if (rows * cols == 0) return;
  block_kernel<T><<<grid_for(rows * cols), kBlock, 0, stream()>>>(
      full, ld, row0, col0, rows, cols, const_cast<T*>(block), static_cast<T>(alpha), true);
  check_launch("add_block kernel");
}

#define QUOPT_INSTANTIATE(T)                                                                           \
  template void ema<T>(T*, const T*, std::int64_t, double, double, bool);                              \
  template void adam_direction<T>(const T*, const T*, std::int64_t, double, double, T*);               \
  template void add_diagonal<T>(T*, std::int64_t, double);                                             \
  template void scale_columns<T>(T*, std::int64_t, std::int64_t, const T*);                            \
  template double max_abs_minus_identity<T>(const T*, std::int64_t);                                   \
  template void copy_block<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,        \
                              std::int64_t, T*);                                                       \
  template void add_block<T>(T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, \
                             const T*, double);                                                        \
  template void gather<T>(const T*, std::int64_t, std::int64_t, const std::int64_t*, bool, T*);        \
  template void column_dots<T>(const T*, const T*, std::int64_t, std::int64_t, double*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE
template void convert<float, double>(const float*, std::int64_t, double*);
template void convert<double, float>(const double*, std::int64_t, float*);
template void convert<float, float>(const float*, std::int64_t, float*);
template void convert<double, double>(const double*, std::int64_t, double*);

}  // namespace quopt::kernels::cuda
