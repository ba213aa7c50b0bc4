#pragma once
// CUDA GEMM through cuBLAS, row-major (same contract as kernels/host/gemm.hpp); device pointers.
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, double beta, T* c, std::int64_t ldc);

template <class T>
void gemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n,
                  std::int64_t k, double alpha, const T* a, std::int64_t lda, std::int64_t stride_a,
                  const T* b, std::int64_t ldb, std::int64_t stride_b, double beta, T* c, std::int64_t ldc,
                  std::int64_t stride_c);

}  // namespace quopt::kernels::cuda
