#pragma once
// Host gradient accumulation in fp64 (twin of kernels/cuda/accumulate.cu): the folds the data-parallel
// gradient sync does after every micro-batch.
#include <cstdint>

namespace quopt::kernels::host {

// acc[i] += x[i]; x[i] = 0.
void fold_f64(float* x, double* acc, std::int64_t n);
// x[i] = float(acc[i]); acc[i] = 0.
void unfold_f64(double* acc, float* x, std::int64_t n);

}  // namespace quopt::kernels::host
