#pragma once
// CUDA MLP activation kernels on device pointers (contracts as in kernels/ops.hpp); T = float or double.
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void relu2_forward(const T* x, T* y, std::int64_t n);
template <class T>
void relu2_backward(const T* dy, const T* x, T* dx, std::int64_t n);
template <class T>
void swiglu_forward(const T* gate, const T* up, T* y, std::int64_t n);
template <class T>
void swiglu_backward(const T* dy, const T* gate, const T* up, T* dgate, T* dup, std::int64_t n);

}  // namespace quopt::kernels::cuda
