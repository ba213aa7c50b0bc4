#pragma once
// CUDA fused AdamW on device pointers (contract and scalars as in kernels/host/adamw.hpp).
#include <cstdint>

#include "kernels/host/adamw.hpp"

namespace quopt::kernels::cuda {

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, std::int64_t n, const host::AdamWScalars& s);

}  // namespace quopt::kernels::cuda
