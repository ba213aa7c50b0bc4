#pragma once
// CUDA GEMM through cuBLAS, row-major (same contract as kernels/host/gemm.hpp); device pointers.
#include <cstdint>

namespace quopt::kernels::cuda {

// fp32 GEMMs in bf16 tensor-core compute (cuBLASLt CUBLAS_COMPUTE_32F_FAST_16BF: inputs rounded to bf16,
// fp32 accumulation, fp32 in and out) when on; strict fp32 (CUBLAS_COMPUTE_32F) when off (the default).
void set_bf16_compute(bool on);
bool bf16_compute();

template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, double beta, T* c, std::int64_t ldc);

template <class T>
void gemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n,
                  std::int64_t k, double alpha, const T* a, std::int64_t lda, std::int64_t stride_a,
                  const T* b, std::int64_t ldb, std::int64_t stride_b, double beta, T* c, std::int64_t ldc,
                  std::int64_t stride_c);

}  // namespace quopt::kernels::cuda
