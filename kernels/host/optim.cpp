#include "kernels/host/optim.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

template <class T>
void ema(T* v, const T* x, std::int64_t n, double a, double b, bool square) {
  const auto at = static_cast<T>(a), bt = static_cast<T>(b);
  if (square) {
    Kokkos::parallel_for("quopt::host::ema_square", HostRange(0, n),
                         [=](const std::int64_t i) { v[i] = at * v[i] + bt * (x[i] * x[i]); });
  } else {
    Kokkos::parallel_for("quopt::host::ema", HostRange(0, n),
                         [=](const std::int64_t i) { v[i] = at * v[i] + bt * x[i]; });
  }
}

template <class T>
void adam_direction(const T* m, const T* v, std::int64_t n, double c, double eps, T* out) {
  const auto ct = static_cast<T>(c), et = static_cast<T>(eps);
  Kokkos::parallel_for("quopt::host::adam_direction", HostRange(0, n),
                       [=](const std::int64_t i) { out[i] = m[i] / (std::sqrt(v[i] * ct) + et); });
}

template <class T>
void add_diagonal(T* a, std::int64_t n, double value) {
  const auto vt = static_cast<T>(value);
  for (std::int64_t i = 0; i < n; ++i) a[i * n + i] += vt;
}

template <class T>
void scale_columns(T* a, std::int64_t rows, std::int64_t cols, const T* s) {
  Kokkos::parallel_for("quopt::host::scale_columns", HostRange(0, rows), [=](const std::int64_t i) {
    for (std::int64_t j = 0; j < cols; ++j) a[i * cols + j] *= s[j];
  });
}

template <class T>
double max_abs_minus_identity(const T* a, std::int64_t n) {
  double e = 0.0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      e = std::max(e, std::abs(static_cast<double>(a[i * n + j]) - (i == j ? 1.0 : 0.0)));
  return e;
}

template <class S, class D>
void convert(const S* src, std::int64_t n, D* dst) {
  Kokkos::parallel_for("quopt::host::convert", HostRange(0, n),
                       [=](const std::int64_t i) { dst[i] = static_cast<D>(src[i]); });
}

template <class T>
void copy_block(const T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0, std::int64_t rows,
                std::int64_t cols, T* block) {
  for (std::int64_t i = 0; i < rows; ++i) std::copy_n(full + (row0 + i) * ld + col0, cols, block + i * cols);
}

template <class T>
void add_block(T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0, std::int64_t rows,
               std::int64_t cols, const T* block, double alpha) {
  const auto a = static_cast<T>(alpha);
  for (std::int64_t i = 0; i < rows; ++i) {
    T* d = full + (row0 + i) * ld + col0;
    const T* s = block + i * cols;
    for (std::int64_t j = 0; j < cols; ++j) d[j] += a * s[j];
  }
}

template <class T>
void gather(const T* a, std::int64_t rows, std::int64_t cols, const std::int64_t* idx, bool columns, T* out) {
  Kokkos::parallel_for("quopt::host::gather", HostRange(0, rows), [=](const std::int64_t i) {
    for (std::int64_t j = 0; j < cols; ++j)
      out[i * cols + j] = columns ? a[i * cols + idx[j]] : a[idx[i] * cols + j];
  });
}

template <class T>
void column_dots(const T* a, const T* b, std::int64_t rows, std::int64_t cols, double* d) {
  std::fill(d, d + cols, 0.0);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      d[j] += static_cast<double>(a[i * cols + j]) * static_cast<double>(b[i * cols + j]);
}

template <class T>
int eigh_inplace(T* a, std::int64_t n, T* w) {
  if (n == 0) return 0;
  const auto ln = static_cast<lapack_int>(n);
  if constexpr (std::is_same_v<T, float>)
    return static_cast<int>(LAPACKE_ssyevd(LAPACK_ROW_MAJOR, 'V', 'U', ln, a, ln, w));
  else
    return static_cast<int>(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', ln, a, ln, w));
}

template <class T>
int qr_inplace(T* a, std::int64_t m, std::int64_t n, T* r) {
  std::fill(r, r + n * n, T(0));
  if (m == 0 || n == 0) return 0;
  const auto lm = static_cast<lapack_int>(m), ln = static_cast<lapack_int>(n);
  std::vector<T> tau(static_cast<std::size_t>(n));
  lapack_int info = 0;
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, lm, ln, a, ln, tau.data());
  else
    info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, lm, ln, a, ln, tau.data());
  if (info != 0) return static_cast<int>(info);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i; j < n; ++j) r[i * n + j] = a[i * n + j];
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, lm, ln, ln, a, ln, tau.data());
  else
    info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, lm, ln, ln, a, ln, tau.data());
  return static_cast<int>(info);
}

#define QUOPT_INSTANTIATE(T)                                                                           \
  template void ema<T>(T*, const T*, std::int64_t, double, double, bool);                              \
  template void adam_direction<T>(const T*, const T*, std::int64_t, double, double, T*);               \
  template void add_diagonal<T>(T*, std::int64_t, double);                                             \
  template void scale_columns<T>(T*, std::int64_t, std::int64_t, const T*);                            \
  template double max_abs_minus_identity<T>(const T*, std::int64_t);                                   \
  template void copy_block<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,        \
                              std::int64_t, T*);                                                       \
  template void add_block<T>(T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, \
                             const T*, double);                                                        \
  template void gather<T>(const T*, std::int64_t, std::int64_t, const std::int64_t*, bool, T*);        \
  template void column_dots<T>(const T*, const T*, std::int64_t, std::int64_t, double*);               \
  template int eigh_inplace<T>(T*, std::int64_t, T*);                                                  \
  template int qr_inplace<T>(T*, std::int64_t, std::int64_t, T*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE
template void convert<float, double>(const float*, std::int64_t, double*);
template void convert<double, float>(const double*, std::int64_t, float*);
template void convert<float, float>(const float*, std::int64_t, float*);
template void convert<double, double>(const double*, std::int64_t, double*);

}  // namespace quopt::kernels::host
