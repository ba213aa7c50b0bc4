// CUDA kernels of the PSGD-Kron primitives (twin of kernels/host/psgd.cpp). Element updates, the row /
// column sums of squares, max |x|, the spectral-norm lower bound and the diagonal factor update follow the
// host's order with explicit roundings (kernels/cuda/rounding.cuh), so they are the host's bits; the
// triangular products and Gram matrices are cuBLAS (?trmm, ?trsm, ?gemm), and abs_sum and the clip's sum of
// squares are fixed-order block reductions (deterministic, equal to the host's to rounding).
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/psgd.hpp"
#include "kernels/cuda/rounding.cuh"

namespace quopt::kernels::cuda {

namespace {

// The smallest normal float (kron_torch's torch.finfo(float32).tiny), as on the host.
constexpr float kTiny = FLT_MIN;
// One block for the reductions whose result the host reads (PSGD factors and parameters: at most a few
// million elements), so their order is fixed by the launch shape alone.
constexpr int kReduceBlock = 1024;

// Row-major x [rows, cols] is column-major x^T: a left product in row-major is a right product there, and
// row-major upper triangular is column-major lower triangular (op unchanged).
cublasSideMode_t col_major_side(int side) {
  return side == 0 ? CUBLAS_SIDE_RIGHT : CUBLAS_SIDE_LEFT;
}
cublasOperation_t op_of(bool trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}

void trmm(cublasSideMode_t s, cublasOperation_t t, int m, int n, const float* a, int lda, float* b, int ldb) {
  const float one = 1.0f;
  check(cublasStrmm(cublas(), s, CUBLAS_FILL_MODE_LOWER, t, CUBLAS_DIAG_NON_UNIT, m, n, &one, a, lda, b, ldb,
                    b, ldb),
        "cublasStrmm");
}
void trmm(cublasSideMode_t s, cublasOperation_t t, int m, int n, const double* a, int lda, double* b,
          int ldb) {
  const double one = 1.0;
  check(cublasDtrmm(cublas(), s, CUBLAS_FILL_MODE_LOWER, t, CUBLAS_DIAG_NON_UNIT, m, n, &one, a, lda, b, ldb,
                    b, ldb),
        "cublasDtrmm");
}
void trsm(cublasSideMode_t s, cublasOperation_t t, int m, int n, const float* a, int lda, float* b, int ldb) {
  const float one = 1.0f;
  check(cublasStrsm(cublas(), s, CUBLAS_FILL_MODE_LOWER, t, CUBLAS_DIAG_NON_UNIT, m, n, &one, a, lda, b, ldb),
        "cublasStrsm");
}
void trsm(cublasSideMode_t s, cublasOperation_t t, int m, int n, const double* a, int lda, double* b,
          int ldb) {
  const double one = 1.0;
  check(cublasDtrsm(cublas(), s, CUBLAS_FILL_MODE_LOWER, t, CUBLAS_DIAG_NON_UNIT, m, n, &one, a, lda, b, ldb),
        "cublasDtrsm");
}
void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float* c, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  check(cublasSgemm(cublas(), ta, tb, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc), "cublasSgemm");
}
void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double* c, int ldc) {
  const double one = 1.0, zero = 0.0;
  check(cublasDgemm(cublas(), ta, tb, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc), "cublasDgemm");
}

template <class T>
T* scratch(std::int64_t n) {
  T* p = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&p), sizeof(T) * static_cast<std::size_t>(n), stream()),
        "cudaMallocAsync (psgd scratch)");
  return p;
}
void release(void* p) {
  check(cudaFreeAsync(p, stream()), "cudaFreeAsync (psgd scratch)");
}
// Copies one value from the device and waits for it (the host reads a result).
template <class T>
T read_back(const T* d, const char* what) {
  T h{};
  check(cudaMemcpyAsync(&h, d, sizeof(T), cudaMemcpyDeviceToHost, stream()), what);
  check(cudaStreamSynchronize(stream()), what);
  return h;
}

template <class T>
__global__ void diagonal_apply_kernel(const T* d, int side, bool solve, T* x, std::int64_t rows,
                                      std::int64_t cols) {
  for (std::int64_t e = first_index(); e < rows * cols; e += grid_stride()) {
    const T s = d[side == 0 ? e / cols : e % cols];
    x[e] = solve ? div_rn(x[e], s) : mul_rn(x[e], s);
  }
}

// One thread per output, the other index in order: the host's bits.
template <class T>
__global__ void sum_squares_axis_kernel(const T* x, std::int64_t rows, std::int64_t cols, int side, T* out) {
  const std::int64_t n = side == 0 ? rows : cols, m = side == 0 ? cols : rows;
  for (std::int64_t o = first_index(); o < n; o += grid_stride()) {
    double acc = 0.0;
    for (std::int64_t k = 0; k < m; ++k) {
      const double v = x[side == 0 ? o * cols + k : k * cols + o];
      acc = __dadd_rn(acc, __dmul_rn(v, v));
    }
    out[o] = static_cast<T>(acc);
  }
}

// what = 0: sum |x|; 1: max |x|; 2: sum x^2. One block.
template <class T>
__global__ void reduce_kernel(const T* x, std::int64_t n, int what, double* out) {
  __shared__ double buf[32];
  double acc = 0.0;
  for (std::int64_t k = threadIdx.x; k < n; k += blockDim.x) {
    const double v = fabs(static_cast<double>(x[k]));
    acc = what == 1 ? fmax(acc, v) : what == 0 ? acc + v : acc + v * v;
  }
  acc = what == 1 ? block_max(acc, buf, 0.0) : block_sum(acc, buf);
  if (threadIdx.x == 0) *out = acc;
}

template <class T>
double reduce(const T* x, std::int64_t n, int what) {
  if (n == 0) return 0.0;
  double* d = scratch<double>(1);
  reduce_kernel<T><<<1, kReduceBlock, 0, stream()>>>(x, n, what, d);
  check_launch("psgd reduce kernel");
  const double h = read_back(d, "cudaMemcpyAsync (psgd reduce)");
  release(d);
  return h;
}

template <class T>
__global__ void divide_kernel(const T* x, std::int64_t n, T d, T* out) {
  for (std::int64_t k = first_index(); k < n; k += grid_stride()) out[k] = div_rn(x[k], d);
}

template <class T>
__global__ void scale_kernel(T* x, std::int64_t n, T c) {
  for (std::int64_t k = first_index(); k < n; k += grid_stride()) x[k] = mul_rn(x[k], c);
}

template <class T>
__global__ void decayed_update_kernel(T* w, const T* d, std::int64_t n, T lr, T wd) {
  for (std::int64_t k = first_index(); k < n; k += grid_stride())
    w[k] = sub_rn(w[k], mul_rn(lr, add_rn(d[k], mul_rn(wd, w[k]))));
}

// The host's norm_lower_bound, step by step in its order (one block; `work` holds n doubles): the first
// column of largest norm is found by each thread over its columns, then by thread 0 over the threads.
template <class T>
__global__ void norm_lower_bound_kernel(const T* s, std::int64_t n, double* work, double* out) {
  __shared__ double buf[32];
  __shared__ double best_norm[kReduceBlock];
  __shared__ std::int64_t best_col[kReduceBlock];
  __shared__ double m_s, ny_s;
  __shared__ std::int64_t best_s;
  double m = 0.0;
  for (std::int64_t k = threadIdx.x; k < n * n; k += blockDim.x) m = fmax(m, fabs(static_cast<double>(s[k])));
  m = block_max(m, buf, 0.0);
  if (!(m > 0.0)) {
    if (threadIdx.x == 0) *out = 0.0;
    return;
  }
  double bn = -1.0;
  std::int64_t bc = 0;
  for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    double a = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = __ddiv_rn(static_cast<double>(s[i * n + j]), m);
      a = __dadd_rn(a, __dmul_rn(v, v));
    }
    if (a > bn) {
      bn = a;
      bc = j;
    }
  }
  best_norm[threadIdx.x] = bn;
  best_col[threadIdx.x] = bc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double b = -1.0;
    std::int64_t c = 0;
    for (int t = 0; t < static_cast<int>(blockDim.x) && t < n; ++t)
      if (best_norm[t] > b || (best_norm[t] == b && best_col[t] < c)) {
        b = best_norm[t];
        c = best_col[t];
      }
    best_s = c;
    m_s = m;
  }
  __syncthreads();
  const std::int64_t best = best_s;
  for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) {  // y = x^T S'
    double y = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double x = __ddiv_rn(static_cast<double>(s[i * n + best]), m_s);
      y = __dadd_rn(y, __ddiv_rn(__dmul_rn(x, static_cast<double>(s[i * n + j])), m_s));
    }
    work[j] = y;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double ny = 0.0;
    for (std::int64_t j = 0; j < n; ++j) ny = __dadd_rn(ny, __dmul_rn(work[j], work[j]));
    ny_s = __dsqrt_rn(ny);
  }
  __syncthreads();
  // z = S' y / |y|; each thread keeps its rows' z^2 until every y has been read.
  constexpr int kMaxRowsPerThread = 8;  // n <= 8 * 1024 (max_size_triangular's default is 8192)
  double z2[kMaxRowsPerThread];
  int r = 0;
  for (std::int64_t k = threadIdx.x; k < n; k += blockDim.x, ++r) {
    double z = 0.0;
    for (std::int64_t j = 0; j < n; ++j)
      z = __dadd_rn(z,
                    __dmul_rn(__ddiv_rn(static_cast<double>(s[k * n + j]), m_s), __ddiv_rn(work[j], ny_s)));
    z2[r] = __dmul_rn(z, z);
  }
  __syncthreads();
  r = 0;
  for (std::int64_t k = threadIdx.x; k < n; k += blockDim.x, ++r) work[k] = z2[r];
  __syncthreads();
  if (threadIdx.x == 0) {
    double nz = 0.0;
    for (std::int64_t k = 0; k < n; ++k) nz = __dadd_rn(nz, work[k]);
    *out = __dmul_rn(__dsqrt_rn(nz), m_s);
  }
}

// The diagonal factor update in one block: norm, the candidate into next, and whether it is finite.
template <class T>
__global__ void diagonal_update_kernel(const T* q, const T* t1, const T* t2, std::int64_t n, T lr, T* next,
                                       int* finite) {
  __shared__ T buf[32];
  T norm = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const T v = fabs(add_rn(t1[i], t2[i]));
    norm = v > norm ? v : norm;
  }
  norm = block_max(norm, buf, T(0));
  norm = norm > static_cast<T>(kTiny) ? norm : static_cast<T>(kTiny);
  T bad = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    next[i] = sub_rn(q[i], mul_rn(mul_rn(sub_rn(t1[i], t2[i]), lr), div_rn(q[i], norm)));
    if (!isfinite(next[i])) bad = 1;
  }
  bad = block_max(bad, buf, T(0));
  if (threadIdx.x == 0) *finite = bad == T(0);
}

template <class T>
__global__ void add_kernel(const T* a, const T* b, std::int64_t n, T* out) {
  for (std::int64_t k = first_index(); k < n; k += grid_stride()) out[k] = add_rn(a[k], b[k]);
}

// e = triu((t1 - t2) lr / denom), zero below the diagonal.
template <class T>
__global__ void triangular_step_kernel(const T* t1, const T* t2, std::int64_t n, T lr, T denom, T* e) {
  for (std::int64_t k = first_index(); k < n * n; k += grid_stride())
    e[k] = k % n < k / n ? T(0) : div_rn(mul_rn(sub_rn(t1[k], t2[k]), lr), denom);
}

// next = triu(q - prod) in place of prod, and whether every entry is finite (one block).
template <class T>
__global__ void triangular_next_kernel(const T* q, std::int64_t n, T* prod, int* finite) {
  __shared__ T buf[32];
  T bad = 0;
  for (std::int64_t k = threadIdx.x; k < n * n; k += blockDim.x) {
    prod[k] = k % n < k / n ? T(0) : sub_rn(q[k], prod[k]);
    if (!isfinite(prod[k])) bad = 1;
  }
  bad = block_max(bad, buf, T(0));
  if (threadIdx.x == 0) *finite = bad == T(0);
}

}  // namespace

template <class T>
void triangular_apply(const T* f, int side, bool trans, bool solve, T* x, std::int64_t rows,
                      std::int64_t cols) {
  if (rows * cols == 0) return;
  const int m = static_cast<int>(cols), n = static_cast<int>(rows),
            k = static_cast<int>(side == 0 ? rows : cols);
  if (solve)
    trsm(col_major_side(side), op_of(trans), m, n, f, k, x, m);
  else
    trmm(col_major_side(side), op_of(trans), m, n, f, k, x, m);
}

template <class T>
void diagonal_apply(const T* d, int side, bool solve, T* x, std::int64_t rows, std::int64_t cols) {
  if (rows * cols == 0) return;
  diagonal_apply_kernel<T><<<grid_for(rows * cols), kBlock, 0, stream()>>>(d, side, solve, x, rows, cols);
  check_launch("diagonal_apply kernel");
}

// Row-major c = x x^T with x [n, k] is column-major c = x'^T x' with x' = x^T [k, n]; c is symmetric.
template <class T>
void gram(const T* x, std::int64_t n, std::int64_t k, bool transposed, T* c) {
  if (n == 0) return;
  const int ni = static_cast<int>(n), ki = static_cast<int>(k);
  if (!transposed)
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, ni, ni, ki, x, ki, x, ki, c, ni);
  else
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, ni, ni, ki, x, ni, x, ni, c, ni);
}

template <class T>
void sum_squares_axis(const T* x, std::int64_t rows, std::int64_t cols, int side, T* out) {
  const std::int64_t n = side == 0 ? rows : cols;
  if (n == 0) return;
  sum_squares_axis_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(x, rows, cols, side, out);
  check_launch("sum_squares_axis kernel");
}

template <class T>
double abs_sum(const T* x, std::int64_t n) {
  return reduce(x, n, 0);
}

template <class T>
double max_abs(const T* x, std::int64_t n) {
  return reduce(x, n, 1);
}

template <class T>
void divide(const T* x, std::int64_t n, double d, T* out) {
  if (n == 0) return;
  divide_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(x, n, static_cast<T>(d), out);
  check_launch("divide kernel");
}

template <class T>
void decayed_update(T* w, const T* d, std::int64_t n, double lr, double wd) {
  if (n == 0) return;
  decayed_update_kernel<T>
      <<<grid_for(n), kBlock, 0, stream()>>>(w, d, n, static_cast<T>(lr), static_cast<T>(wd));
  check_launch("decayed_update kernel");
}

template <class T>
double clip_rms(T* x, std::int64_t n, double clip) {
  if (clip <= 0.0 || n == 0) return 1.0;
  const double rms = std::sqrt(reduce(x, n, 2) / static_cast<double>(n));
  const double c = std::min(1.0, clip / (rms + 1e-12));
  if (c < 1.0) {
    scale_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(x, n, static_cast<T>(c));
    check_launch("clip_rms scale kernel");
  }
  return c;
}

template <class T>
double norm_lower_bound(const T* s, std::int64_t n) {
  if (n == 0) return 0.0;
  QUOPT_CHECK(n <= 8 * kReduceBlock, "norm_lower_bound: n = ", n, " exceeds the CUDA kernel's limit of ",
              8 * kReduceBlock, " (optimizer.psgd.max_size_triangular above 8192 on a GPU)");
  double* work = scratch<double>(n + 1);
  norm_lower_bound_kernel<T><<<1, kReduceBlock, 0, stream()>>>(s, n, work, work + n);
  check_launch("norm_lower_bound kernel");
  const double h = read_back(work + n, "cudaMemcpyAsync (norm_lower_bound)");
  release(work);
  return h;
}

template <class T>
bool psgd_diagonal_update(T* q, const T* t1, const T* t2, std::int64_t n, double lr) {
  if (n == 0) return true;
  T* next = scratch<T>(n);
  int* finite = scratch<int>(1);
  diagonal_update_kernel<T><<<1, kReduceBlock, 0, stream()>>>(q, t1, t2, n, static_cast<T>(lr), next, finite);
  check_launch("psgd_diagonal_update kernel");
  const bool ok = read_back(finite, "cudaMemcpyAsync (psgd_diagonal_update)") != 0;
  if (ok)
    check(
        cudaMemcpyAsync(q, next, sizeof(T) * static_cast<std::size_t>(n), cudaMemcpyDeviceToDevice, stream()),
        "cudaMemcpyAsync (psgd_diagonal_update)");
  release(next);
  release(finite);
  return ok;
}

template <class T>
bool psgd_triangular_update(T* q, const T* t1, const T* t2, std::int64_t n, double lr) {
  if (n == 0) return true;
  const std::int64_t nn = n * n;
  T* work = scratch<T>(2 * nn);
  int* finite = scratch<int>(1);
  T* sum = work;
  T* prod = work + nn;
  add_kernel<T><<<grid_for(nn), kBlock, 0, stream()>>>(t1, t2, nn, sum);
  check_launch("psgd add kernel");
  const T denom = std::max(static_cast<T>(norm_lower_bound(sum, n)), static_cast<T>(kTiny));
  T* e = sum;  // the sum is no longer needed
  triangular_step_kernel<T><<<grid_for(nn), kBlock, 0, stream()>>>(t1, t2, n, static_cast<T>(lr), denom, e);
  check_launch("psgd triangular step kernel");
  check(
      cudaMemcpyAsync(prod, q, sizeof(T) * static_cast<std::size_t>(nn), cudaMemcpyDeviceToDevice, stream()),
      "cudaMemcpyAsync (psgd_triangular_update)");
  const int ni = static_cast<int>(n);
  trmm(col_major_side(0), CUBLAS_OP_N, ni, ni, e, ni, prod, ni);  // prod = triu(e) q
  triangular_next_kernel<T><<<1, kReduceBlock, 0, stream()>>>(q, n, prod, finite);
  check_launch("psgd triangular next kernel");
  const bool ok = read_back(finite, "cudaMemcpyAsync (psgd_triangular_update)") != 0;
  if (ok)
    check(cudaMemcpyAsync(q, prod, sizeof(T) * static_cast<std::size_t>(nn), cudaMemcpyDeviceToDevice,
                          stream()),
          "cudaMemcpyAsync (psgd_triangular_update)");
  release(work);
  release(finite);
  return ok;
}

#define QUOPT_INSTANTIATE(T)                                                                    \
  template void triangular_apply<T>(const T*, int, bool, bool, T*, std::int64_t, std::int64_t); \
  template void diagonal_apply<T>(const T*, int, bool, T*, std::int64_t, std::int64_t);         \
  template void gram<T>(const T*, std::int64_t, std::int64_t, bool, T*);                        \
  template void sum_squares_axis<T>(const T*, std::int64_t, std::int64_t, int, T*);             \
  template double abs_sum<T>(const T*, std::int64_t);                                           \
  template double max_abs<T>(const T*, std::int64_t);                                           \
  template void divide<T>(const T*, std::int64_t, double, T*);                                  \
  template void decayed_update<T>(T*, const T*, std::int64_t, double, double);                  \
  template double clip_rms<T>(T*, std::int64_t, double);                                        \
  template double norm_lower_bound<T>(const T*, std::int64_t);                                  \
  template bool psgd_diagonal_update<T>(T*, const T*, const T*, std::int64_t, double);          \
  template bool psgd_triangular_update<T>(T*, const T*, const T*, std::int64_t, double);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::cuda
