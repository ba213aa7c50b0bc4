// Row-major GEMM through cuBLAS. cuBLAS is column-major; a row-major [r, c] matrix is the column-major
// [c, r] matrix (its transpose) with the same leading dimension, so C = op(A) op(B) is computed as the
// column-major product C^T = op(B)^T op(A)^T with A and B swapped and the same transpose flags.
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/gemm.hpp"

namespace quopt::kernels::cuda {

namespace {

// c = beta * c for the degenerate k == 0 product (beta == 0 writes zeros, also over NaNs).
template <class T>
__global__ void scale_matrix_kernel(T* c, std::int64_t m, std::int64_t n, std::int64_t ldc, T beta) {
  const std::int64_t total = m * n;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    T& x = c[(i / n) * ldc + i % n];
    x = beta == T(0) ? T(0) : beta * x;
  }
}

template <class T>
void scale_matrix(T* c, std::int64_t m, std::int64_t n, std::int64_t ldc, double beta) {
  scale_matrix_kernel<T><<<grid_for(m * n), kBlock, 0, stream()>>>(c, m, n, ldc, static_cast<T>(beta));
  check_launch("gemm (k = 0) scale kernel");
}

cublasStatus_t gemm_call(cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k, const float* alpha,
                         const float* b, int ldb, const float* a, int lda, const float* beta, float* c,
                         int ldc) {
  return cublasSgemm(cublas(), ob, oa, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
}
cublasStatus_t gemm_call(cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k, const double* alpha,
                         const double* b, int ldb, const double* a, int lda, const double* beta, double* c,
                         int ldc) {
  return cublasDgemm(cublas(), ob, oa, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
}

cublasStatus_t gemm_batched_call(cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k,
                                 const float* alpha, const float* b, int ldb, long long sb, const float* a,
                                 int lda, long long sa, const float* beta, float* c, int ldc, long long sc,
                                 int batch) {
  return cublasSgemmStridedBatched(cublas(), ob, oa, n, m, k, alpha, b, ldb, sb, a, lda, sa, beta, c, ldc, sc,
                                   batch);
}
cublasStatus_t gemm_batched_call(cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k,
                                 const double* alpha, const double* b, int ldb, long long sb, const double* a,
                                 int lda, long long sa, const double* beta, double* c, int ldc, long long sc,
                                 int batch) {
  return cublasDgemmStridedBatched(cublas(), ob, oa, n, m, k, alpha, b, ldb, sb, a, lda, sa, beta, c, ldc, sc,
                                   batch);
}

cublasOperation_t op(bool trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}
int as_int(std::int64_t v) {
  return static_cast<int>(v);
}  // ranges checked by the dispatch (blas_int)

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, double beta, T* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_matrix(c, m, n, ldc, beta);
    return;
  }
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  check(gemm_call(op(trans_b), op(trans_a), as_int(n), as_int(m), as_int(k), &al, b, as_int(ldb), a,
                  as_int(lda), &be, c, as_int(ldc)),
        "cublas gemm");
}

template <class T>
void gemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n,
                  std::int64_t k, double alpha, const T* a, std::int64_t lda, std::int64_t stride_a,
                  const T* b, std::int64_t ldb, std::int64_t stride_b, double beta, T* c, std::int64_t ldc,
                  std::int64_t stride_c) {
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    for (std::int64_t i = 0; i < batch; ++i) scale_matrix(c + i * stride_c, m, n, ldc, beta);
    return;
  }
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  check(gemm_batched_call(op(trans_b), op(trans_a), as_int(n), as_int(m), as_int(k), &al, b, as_int(ldb),
                          stride_b, a, as_int(lda), stride_a, &be, c, as_int(ldc), stride_c, as_int(batch)),
        "cublas strided batched gemm");
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const float*,
                          std::int64_t, const float*, std::int64_t, double, float*, std::int64_t);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const double*,
                           std::int64_t, const double*, std::int64_t, double, double*, std::int64_t);
template void gemm_batched<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double,
                                  const float*, std::int64_t, std::int64_t, const float*, std::int64_t,
                                  std::int64_t, double, float*, std::int64_t, std::int64_t);
template void gemm_batched<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double,
                                   const double*, std::int64_t, std::int64_t, const double*, std::int64_t,
                                   std::int64_t, double, double*, std::int64_t, std::int64_t);

}  // namespace quopt::kernels::cuda
