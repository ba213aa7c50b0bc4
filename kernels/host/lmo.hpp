#pragma once
// Host kernels of Scion's linear minimisation oracles (LIONS-EPFL/scion scion.py: Sign, ColNorm, BiasRMS),
// twins of kernels/cuda/lmo.cu. T = float or double; sums in double.
#include <cstdint>

namespace quopt::kernels::host {

// y[i] = f * sign(x[i]) (0 for 0 and NaN), computed in double and rounded to T.
template <class T>
void sign_scaled(const T* x, std::int64_t n, double f, T* y);

// x [rows, cols]. axis 1: every row divided by gain * sqrt(mean_j x[i, j]^2) + eps; axis 0: every
// column by gain * sqrt(mean_i x[i, j]^2) + eps. Sums of squares in double, in index order; the quotient
// in double, rounded to T. y may be x.
template <class T>
void rms_normalize(const T* x, std::int64_t rows, std::int64_t cols, int axis, double gain, double eps, T* y);

}  // namespace quopt::kernels::host
