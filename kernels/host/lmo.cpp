#include "kernels/host/lmo.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

template <class T>
void sign_scaled(const T* x, std::int64_t n, double f, T* y) {
  Kokkos::parallel_for("quopt::host::sign_scaled", HostRange(0, n), [=](const std::int64_t i) {
    y[i] = static_cast<T>(x[i] > T(0) ? f : (x[i] < T(0) ? -f : 0.0));
  });
}

template <class T>
void rms_normalize(const T* x, std::int64_t rows, std::int64_t cols, int axis, double gain, double eps,
                   T* y) {
  if (rows == 0 || cols == 0) return;
  if (axis == 1) {
    Kokkos::parallel_for("quopt::host::rms_normalize_rows", HostRange(0, rows), [=](const std::int64_t r) {
      const T* xr = x + r * cols;
      double s = 0.0;
      for (std::int64_t c = 0; c < cols; ++c) s += static_cast<double>(xr[c]) * static_cast<double>(xr[c]);
      const double den = gain * std::sqrt(s / static_cast<double>(cols)) + eps;
      T* yr = y + r * cols;
      for (std::int64_t c = 0; c < cols; ++c) yr[c] = static_cast<T>(static_cast<double>(xr[c]) / den);
    });
    return;
  }
  // Columns: chunks of kColumnChunk columns in parallel, rows in order inside each (deterministic).
  const std::int64_t chunks = (cols + kColumnChunk - 1) / kColumnChunk;
  Kokkos::parallel_for(
      "quopt::host::rms_normalize_cols", HostRange(0, chunks), [=](const std::int64_t chunk) {
        const std::int64_t c0 = chunk * kColumnChunk, c1 = std::min(cols, c0 + kColumnChunk);
        double den[kColumnChunk] = {};
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t c = c0; c < c1; ++c) {
            const double v = static_cast<double>(x[r * cols + c]);
            den[c - c0] += v * v;
          }
        for (std::int64_t c = c0; c < c1; ++c)
          den[c - c0] = gain * std::sqrt(den[c - c0] / static_cast<double>(rows)) + eps;
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t c = c0; c < c1; ++c)
            y[r * cols + c] = static_cast<T>(static_cast<double>(x[r * cols + c]) / den[c - c0]);
      });
}

#define QUOPT_INSTANTIATE(T)                                        \
  template void sign_scaled<T>(const T*, std::int64_t, double, T*); \
  template void rms_normalize<T>(const T*, std::int64_t, std::int64_t, int, double, double, T*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::host
