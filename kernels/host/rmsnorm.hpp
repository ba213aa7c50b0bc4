#pragma once
// Host RMSNorm over the last dimension of [n, c]; T = float or double (sums in double).
#include <cstdint>

namespace quopt::kernels::host {

// rstd[i] = 1 / sqrt(mean_j x[i, j]^2 + eps); y[i, j] = x[i, j] * rstd[i] * w[j].
template <class T>
void rmsnorm_forward(const T* x, const T* w, double eps, std::int64_t n, std::int64_t c, T* y, T* rstd);

// With r = rstd[i] and s = sum_j dy[i, j] w[j] x[i, j]:
//   dx[i, j] = r (w[j] dy[i, j] - x[i, j] r^2 s / c)       (written)
//   dw[j]   += sum_i dy[i, j] x[i, j] r_i                   (accumulated; rows summed in order)
// dw is computed before dx, so dx may alias dy or x.
template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, std::int64_t n, std::int64_t c,
                      T* dx, T* dw);

}  // namespace quopt::kernels::host
