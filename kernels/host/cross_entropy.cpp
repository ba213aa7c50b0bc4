// Host softmax cross-entropy (see cross_entropy.hpp). One Kokkos iteration per row; the per-row
// losses are kept in double and summed serially afterwards so the total is deterministic.
#include "kernels/host/cross_entropy.hpp"

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace quopt::kernels::host {
namespace {

// exp of a shifted logit in the working precision: float exp for fp32 is about twice as fast as
// double exp and accurate to fp32 rounding; max, sums and products stay in double.
template <class T>
inline double exp_shifted(double shifted) {
  return static_cast<double>(std::exp(static_cast<T>(shifted)));
}

}  // namespace

template <class T>
double cross_entropy_forward(const T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                             double z_loss_coef, T* loss, T* lse) {
  if (n == 0) return 0.0;
  std::vector<double> row_loss(static_cast<std::size_t>(n), 0.0);
  double* rl = row_loss.data();
  const auto row = [=](const std::int64_t i) {
    const T* x = logits + i * vocab;
    double m = static_cast<double>(x[0]);
    for (std::int64_t j = 1; j < vocab; ++j) m = std::max(m, static_cast<double>(x[j]));
    double sum = 0.0;
    for (std::int64_t j = 0; j < vocab; ++j) sum += exp_shifted<T>(static_cast<double>(x[j]) - m);
    const double l = m + std::log(sum);
    lse[i] = static_cast<T>(l);
    const std::int32_t t = targets[i];
    const double li = t < 0 ? 0.0 : l - static_cast<double>(x[t]) + z_loss_coef * l * l;
    loss[i] = static_cast<T>(li);
    rl[i] = li;
  };
  Kokkos::parallel_for("quopt::host::cross_entropy_forward",
                       Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, n), row);
  Kokkos::fence();
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) total += rl[i];
  return total;
}

template <class T>
void cross_entropy_backward(const T* logits, const std::int32_t* targets, const T* lse, std::int64_t n,
                            std::int64_t vocab, double z_loss_coef, double dscale, T* dlogits) {
  if (n == 0) return;
  const auto row = [=](const std::int64_t i) {
    // Each output element depends only on the same input element and the saved lse, so reading
    // x[j] before writing dx[j] is enough when dlogits aliases logits.
    const T* x = logits + i * vocab;
    T* dx = dlogits + i * vocab;
    const std::int32_t t = targets[i];
    if (t < 0) {
      for (std::int64_t j = 0; j < vocab; ++j) dx[j] = T(0);
      return;
    }
    const double l = static_cast<double>(lse[i]);
    // d/dx_j [lse - x_t + z lse^2] = p_j (1 + 2 z lse) - [j == t]  (z-loss: PaLM, Chowdhery et al. 2022).
    const double c = dscale * (1.0 + 2.0 * z_loss_coef * l);
    for (std::int64_t j = 0; j < vocab; ++j) {
      const double g = c * exp_shifted<T>(static_cast<double>(x[j]) - l);
      dx[j] = static_cast<T>(j == t ? g - dscale : g);
    }
  };
  Kokkos::parallel_for("quopt::host::cross_entropy_backward",
                       Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, n), row);
  Kokkos::fence();
}

template double cross_entropy_forward<float>(const float*, const std::int32_t*, std::int64_t, std::int64_t,
                                             double, float*, float*);
template double cross_entropy_forward<double>(const double*, const std::int32_t*, std::int64_t, std::int64_t,
                                              double, double*, double*);
template void cross_entropy_backward<float>(const float*, const std::int32_t*, const float*, std::int64_t,
                                            std::int64_t, double, double, float*);
template void cross_entropy_backward<double>(const double*, const std::int32_t*, const double*, std::int64_t,
                                             std::int64_t, double, double, double*);

}  // namespace quopt::kernels::host
