#pragma once
// CUDA kernels of Scion's LMOs on device pointers; the same contracts and signatures as
// kernels/host/lmo.hpp.
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void sign_scaled(const T* x, std::int64_t n, double f, T* y);
template <class T>
void rms_normalize(const T* x, std::int64_t rows, std::int64_t cols, int axis, double gain, double eps, T* y);

}  // namespace quopt::kernels::cuda
