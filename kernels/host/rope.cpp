#include "kernels/host/rope.hpp"

#include <cmath>
#include <vector>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

template <class T>
void rope(T* x, std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t d, double theta, bool inverse) {
  const std::int64_t half = d / 2;
  if (b * t * h * half == 0) return;
  // cos/sin of every (position, frequency) in double: table[p * half + i].
  std::vector<double> cos_tab(static_cast<std::size_t>(t * half)),
      sin_tab(static_cast<std::size_t>(t * half));
  double* pc = cos_tab.data();
  double* ps = sin_tab.data();
  const double sign = inverse ? -1.0 : 1.0;
  host_for("quopt::host::rope_table", t, [=](const std::int64_t p) {
    for (std::int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
      const double angle = static_cast<double>(p) * inv_freq;
      pc[p * half + i] = std::cos(angle);
      ps[p * half + i] = sign * std::sin(angle);
    }
  }, half);
  const std::int64_t rows = b * t * h;  // one row = one head vector of one token
  host_for("quopt::host::rope", rows, [=](const std::int64_t r) {
    const std::int64_t p = (r / h) % t;
    const double* cr = pc + p * half;
    const double* sr = ps + p * half;
    T* xr = x + r * d;
    for (std::int64_t i = 0; i < half; ++i) {
      const double x1 = static_cast<double>(xr[i]);
      const double x2 = static_cast<double>(xr[i + half]);
      xr[i] = static_cast<T>(x1 * cr[i] - x2 * sr[i]);
      xr[i + half] = static_cast<T>(x2 * cr[i] + x1 * sr[i]);
    }
  }, d);
}

template void rope<float>(float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double, bool);
template void rope<double>(double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double, bool);

}  // namespace quopt::kernels::host
