// CUDA rotary position embedding, rotate-half convention, in place (twin of kernels/host/rope.cpp):
// one thread per (row, frequency) pair; angles, cos and sin in double as on the host.
#include <cmath>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/rope.hpp"

namespace quopt::kernels::cuda {

namespace {

template <class T>
__global__ void rope_kernel(T* x, std::int64_t t, std::int64_t h, std::int64_t d, double theta, double sign,
                            std::int64_t pairs) {
  const std::int64_t half = d / 2;
  for (std::int64_t e = first_index(); e < pairs; e += grid_stride()) {
    const std::int64_t r = e / half, i = e % half;  // row = one head vector of one token
    const std::int64_t p = (r / h) % t;
    const double inv_freq = pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
    const double angle = static_cast<double>(p) * inv_freq;
    const double cs = cos(angle), sn = sign * sin(angle);
    T* xr = x + r * d;
    const double x1 = static_cast<double>(xr[i]);
    const double x2 = static_cast<double>(xr[i + half]);
    xr[i] = static_cast<T>(x1 * cs - x2 * sn);
    xr[i + half] = static_cast<T>(x2 * cs + x1 * sn);
  }
}

}  // namespace

template <class T>
void rope(T* x, std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t d, double theta, bool inverse) {
  const std::int64_t pairs = b * t * h * (d / 2);
  if (pairs == 0) return;
  rope_kernel<T><<<grid_for(pairs), kBlock, 0, stream()>>>(x, t, h, d, theta, inverse ? -1.0 : 1.0, pairs);
  check_launch("rope kernel");
}

template void rope<float>(float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double, bool);
template void rope<double>(double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double, bool);

}  // namespace quopt::kernels::cuda
