// CUDA fused AdamW (twin of kernels/host/adamw.cpp): one pass reads p, g, m, v and writes p, m, v, with
// the same double-precision arithmetic as the host (fp32 state in fp32 mode).
#include <cmath>

#include "kernels/cuda/adamw.hpp"
#include "kernels/cuda/check.cuh"

namespace quopt::kernels::cuda {

namespace {

template <class T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, std::int64_t n, host::AdamWScalars s) {
  const double decay = 1.0 - s.lr * s.weight_decay;
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) {
    const double gi = static_cast<double>(g[i]);
    const double mi = s.beta1 * static_cast<double>(m[i]) + (1.0 - s.beta1) * gi;
    const double vi = s.beta2 * static_cast<double>(v[i]) + (1.0 - s.beta2) * gi * gi;
    const double pi =
        static_cast<double>(p[i]) * decay - s.lr * (mi / s.bias_correction1) / (sqrt(vi / s.bias_correction2) + s.eps);
    m[i] = static_cast<T>(mi);
    v[i] = static_cast<T>(vi);
    p[i] = static_cast<T>(pi);
  }
}

}  // namespace

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, std::int64_t n, const host::AdamWScalars& s) {
  if (n == 0) return;
  adamw_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(p, g, m, v, n, s);
  check_launch("adamw_update kernel");
}

template void adamw_update<float>(float*, const float*, float*, float*, std::int64_t, const host::AdamWScalars&);
template void adamw_update<double>(double*, const double*, double*, double*, std::int64_t,
                                   const host::AdamWScalars&);

}  // namespace quopt::kernels::cuda
