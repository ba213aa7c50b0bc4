#pragma once
// CUDA fp64 gradient accumulation on device pointers (contracts as in kernels/host/accumulate.hpp).
#include <cstdint>

namespace quopt::kernels::cuda {

void fold_f64(float* x, double* acc, std::int64_t n);
void unfold_f64(double* acc, float* x, std::int64_t n);

}  // namespace quopt::kernels::cuda
