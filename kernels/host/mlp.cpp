#include "kernels/host/mlp.hpp"

#include <cmath>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

namespace {
// 1 / (1 + e^-g): for g -> -inf the exponential overflows to inf and the result is 0, never NaN.
template <class T>
T sigmoid(T g) {
  return T(1) / (T(1) + std::exp(-g));
}
}  // namespace

template <class T>
void relu2_forward(const T* x, T* y, std::int64_t n) {
  host_for("quopt::host::relu2_forward", n, [=](const std::int64_t i) {
    const T r = x[i] > T(0) ? x[i] : T(0);
    y[i] = r * r;
  });
}

template <class T>
void relu2_backward(const T* dy, const T* x, T* dx, std::int64_t n) {
  host_for("quopt::host::relu2_backward", n, [=](const std::int64_t i) {
    const T r = x[i] > T(0) ? x[i] : T(0);
    dx[i] = T(2) * r * dy[i];
  });
}

template <class T>
void swiglu_forward(const T* gate, const T* up, T* y, std::int64_t n) {
  host_for("quopt::host::swiglu_forward", n, [=](const std::int64_t i) {
    const T g = gate[i];
    y[i] = g * sigmoid(g) * up[i];
  });
}

template <class T>
void swiglu_backward(const T* dy, const T* gate, const T* up, T* dgate, T* dup, std::int64_t n) {
  host_for("quopt::host::swiglu_backward", n, [=](const std::int64_t i) {
    // Read every input before writing, so outputs may alias inputs elementwise.
    const T g = gate[i], u = up[i], d = dy[i];
    const T s = sigmoid(g);
    dgate[i] = d * u * s * (T(1) + g * (T(1) - s));
    dup[i] = d * g * s;
  });
}

#define QUOPT_INSTANTIATE(T)                                             \
  template void relu2_forward<T>(const T*, T*, std::int64_t);            \
  template void relu2_backward<T>(const T*, const T*, T*, std::int64_t); \
  template void swiglu_forward<T>(const T*, const T*, T*, std::int64_t); \
  template void swiglu_backward<T>(const T*, const T*, const T*, T*, T*, std::int64_t);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::host
