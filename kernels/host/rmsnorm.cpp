#include "kernels/host/rmsnorm.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/host/host_policy.hpp"
#include "kernels/host/softmax_loops.hpp"

namespace quopt::kernels::host {

template <class T>
void rmsnorm_forward(const T* x, const T* w, double eps, std::int64_t n, std::int64_t c, T* y, T* rstd) {
  host_for("quopt::host::rmsnorm_forward", n, [=](const std::int64_t i) {
    const T* xi = x + i * c;
    const double ss = sum_lanes_of(c, [xi](std::int64_t j) {
      return static_cast<double>(xi[j]) * static_cast<double>(xi[j]);
    });
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(c) + eps);
    rstd[i] = static_cast<T>(r);
    T* yi = y + i * c;
    for (std::int64_t j = 0; j < c; ++j) {
      yi[j] = static_cast<T>(static_cast<double>(xi[j]) * r * static_cast<double>(w[j]));
    }
  }, c);
}

template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, std::int64_t n, std::int64_t c,
                      T* dx, T* dw) {
  // dw: column chunks in parallel, rows in order inside each (deterministic).
  const std::int64_t chunks = (c + kColumnChunk - 1) / kColumnChunk;
  host_for("quopt::host::rmsnorm_backward_dw", chunks,
                       [=](const std::int64_t chunk) {
                         const std::int64_t j0 = chunk * kColumnChunk;
                         const std::int64_t j1 = std::min(c, j0 + kColumnChunk);
                         double acc[kColumnChunk] = {};
                         for (std::int64_t i = 0; i < n; ++i) {
                           const double r = static_cast<double>(rstd[i]);
                           const T* dyi = dy + i * c;
                           const T* xi = x + i * c;
                           for (std::int64_t j = j0; j < j1; ++j) {
                             acc[j - j0] += static_cast<double>(dyi[j]) * static_cast<double>(xi[j]) * r;
                           }
                         }
                         for (std::int64_t j = j0; j < j1; ++j)
                           dw[j] = static_cast<T>(static_cast<double>(dw[j]) + acc[j - j0]);
                       }, n * kColumnChunk);
  // dx: rows in parallel.
  host_for("quopt::host::rmsnorm_backward_dx", n, [=](const std::int64_t i) {
    const double r = static_cast<double>(rstd[i]);
    const T* dyi = dy + i * c;
    const T* xi = x + i * c;
    const double s = sum_lanes_of(c, [=](std::int64_t j) {
      return static_cast<double>(dyi[j]) * static_cast<double>(w[j]) * static_cast<double>(xi[j]);
    });
    const double coef = r * r * s / static_cast<double>(c);
    T* dxi = dx + i * c;
    for (std::int64_t j = 0; j < c; ++j) {
      const double g = static_cast<double>(w[j]) * static_cast<double>(dyi[j]);
      dxi[j] = static_cast<T>(r * (g - static_cast<double>(xi[j]) * coef));
    }
  }, c);
}

#define QUOPT_INSTANTIATE(T)                                                                                \
  template void rmsnorm_forward<T>(const T*, const T*, double, std::int64_t, std::int64_t, T*, T*);         \
  template void rmsnorm_backward<T>(const T*, const T*, const T*, const T*, std::int64_t, std::int64_t, T*, \
                                    T*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::host
