#pragma once
// Host GEMM through OpenBLAS (cblas_sgemm / cblas_dgemm), row-major.
#include <cstdint>

namespace quopt::kernels::host {

// c = alpha * op(a) @ op(b) + beta * c for row-major a, b, c with leading dimensions lda, ldb, ldc
// (the stored row lengths); op(a) is [m, k], op(b) is [k, n], c is [m, n]. beta == 0 overwrites c
// (NaNs in c are not propagated). Instantiated for float and double.
template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, double beta, T* c, std::int64_t ldc);

// batch independent GEMMs with element strides stride_a, stride_b, stride_c between consecutive ones.
template <class T>
void gemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n,
                  std::int64_t k, double alpha, const T* a, std::int64_t lda, std::int64_t stride_a,
                  const T* b, std::int64_t ldb, std::int64_t stride_b, double beta, T* c, std::int64_t ldc,
                  std::int64_t stride_c);

}  // namespace quopt::kernels::host
