#pragma once
// CUDA elementwise kernels on device pointers (contracts as in kernels/ops.hpp); T = float or double.
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void add(const T* a, const T* b, T* out, std::int64_t n);
template <class T>
void axpy(double alpha, const T* x, T* y, std::int64_t n);
template <class T>
void scale(T* x, double s, std::int64_t n);
template <class T>
void fill(T* x, double value, std::int64_t n);

}  // namespace quopt::kernels::cuda
