#pragma once
// CUDA deterministic fp64 sum of squares on device pointers (contract as in kernels/ops.hpp).
#include <cstdint>

namespace quopt::kernels::cuda {

// Returns the sum to the host (waits for the stream).
template <class T>
double sum_squares(const T* x, std::int64_t n);
// Writes the sum to the device double *out, asynchronously.
template <class T>
void sum_squares_device(const T* x, std::int64_t n, double* out);

}  // namespace quopt::kernels::cuda
