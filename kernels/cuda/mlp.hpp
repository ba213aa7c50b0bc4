#pragma once
// CUDA MLP activation kernels on device pointers (contracts as in kernels/ops.hpp); T = float or double.
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void relu2_forward(const T* x, T* y, std::int64_t n);

}  // namespace quopt::kernels::cuda
