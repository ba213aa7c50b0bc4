#include "kernels/host/adamw.hpp"

#include <cmath>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWScalars& s) {
  const double decay = 1.0 - s.lr * s.weight_decay;
  const double b1 = s.beta1, b2 = s.beta2, lr = s.lr, eps = s.eps;
  const double bc1 = s.bias_correction1, bc2 = s.bias_correction2;
  host_for("quopt::host::adamw_update", n, [=](const std::int64_t i) {
    const double gi = static_cast<double>(g[i]);
    const double mi = b1 * static_cast<double>(m[i]) + (1.0 - b1) * gi;
    const double vi = b2 * static_cast<double>(v[i]) + (1.0 - b2) * gi * gi;
    const double pi = static_cast<double>(p[i]) * decay - lr * (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    m[i] = static_cast<T>(mi);
    v[i] = static_cast<T>(vi);
    p[i] = static_cast<T>(pi);
  });
}

template void adamw_update<float>(float*, const float*, float*, float*, std::int64_t, const AdamWScalars&);
template void adamw_update<double>(double*, const double*, double*, double*, std::int64_t,
                                   const AdamWScalars&);

}  // namespace quopt::kernels::host
