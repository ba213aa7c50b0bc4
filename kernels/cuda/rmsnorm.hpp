#pragma once
// CUDA RMSNorm on device pointers (contracts as in kernels/host/rmsnorm.hpp); T = float or double.
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void rmsnorm_forward(const T* x, const T* w, double eps, std::int64_t n, std::int64_t c, T* y, T* rstd);
// dx written; dw accumulated (bitwise equal to the host backend).
template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, std::int64_t n, std::int64_t c, T* dx,
                      T* dw);

}  // namespace quopt::kernels::cuda
