#include "kernels/host/gemm.hpp"

#include <cblas.h>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

namespace {

// c = beta * c for the degenerate k == 0 product (BLAS rejects the leading dimension 0 then).
template <class T>
void scale_rows(std::int64_t m, std::int64_t n, double beta, T* c, std::int64_t ldc) {
  host_for("quopt::host::gemm_k0", m, [=](const std::int64_t i) {
    for (std::int64_t j = 0; j < n; ++j) {
      T& x = c[i * ldc + j];
      x = beta == 0.0 ? T(0) : static_cast<T>(beta * static_cast<double>(x));
    }
  }, n);
}

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, double alpha,
               const float* a, blasint lda, const float* b, blasint ldb, double beta, float* c, blasint ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, static_cast<float>(alpha), a, lda, b, ldb,
              static_cast<float>(beta), c, ldc);
}
void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, double alpha,
               const double* a, blasint lda, const double* b, blasint ldb, double beta, double* c,
               blasint ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, double beta, T* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_rows(m, n, beta, c, ldc);
    return;
  }
  blas_gemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m),
            static_cast<blasint>(n), static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
            static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

template <class T>
void gemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n,
                  std::int64_t k, double alpha, const T* a, std::int64_t lda, std::int64_t stride_a,
                  const T* b, std::int64_t ldb, std::int64_t stride_b, double beta, T* c, std::int64_t ldc,
                  std::int64_t stride_c) {
  // One BLAS call per batch entry, in order; OpenBLAS parallelises inside each call.
  for (std::int64_t i = 0; i < batch; ++i) {
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
         c + i * stride_c, ldc);
  }
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

}  // namespace quopt::kernels::host
