#pragma once
// CUDA RoPE on device pointers (contract as in kernels/host/rope.hpp); x [B, T, H, D] in place.
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void rope(T* x, std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t d, double theta, bool inverse);

}  // namespace quopt::kernels::cuda
