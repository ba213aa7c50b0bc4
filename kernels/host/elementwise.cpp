#include "kernels/host/elementwise.hpp"

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

template <class T>
void add(const T* a, const T* b, T* out, std::int64_t n) {
  host_for("quopt::host::add", n,
                       [=](const std::int64_t i) { out[i] = a[i] + b[i]; });
}

template <class T>
void axpy(double alpha, const T* x, T* y, std::int64_t n) {
  const T a = static_cast<T>(alpha);
  host_for("quopt::host::axpy", n, [=](const std::int64_t i) { y[i] += a * x[i]; });
}

template <class T>
void scale(T* x, double s, std::int64_t n) {
  const T f = static_cast<T>(s);
  host_for("quopt::host::scale", n, [=](const std::int64_t i) { x[i] *= f; });
}

template <class T>
void fill(T* x, double value, std::int64_t n) {
  const T v = static_cast<T>(value);
  host_for("quopt::host::fill", n, [=](const std::int64_t i) { x[i] = v; });
}

#define QUOPT_INSTANTIATE(T)                                  \
  template void add<T>(const T*, const T*, T*, std::int64_t); \
  template void axpy<T>(double, const T*, T*, std::int64_t);  \
  template void scale<T>(T*, double, std::int64_t);           \
  template void fill<T>(T*, double, std::int64_t);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::host
