// Host softmax cross-entropy (see cross_entropy.hpp). One host-loop iteration per row; the per-row
// losses are kept in double and summed serially afterwards so the total is deterministic. exp runs in
// the working precision (vec_exp.hpp; vectorised for f32), max, sums and products in double.
#include "kernels/host/cross_entropy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/host/host_policy.hpp"
#include "kernels/host/softmax_loops.hpp"

namespace quopt::kernels::host {


template <class T>
double cross_entropy_forward(const T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                             double z_loss_coef, T* loss, T* lse) {
  if (n == 0) return 0.0;
  std::vector<double> row_loss(static_cast<std::size_t>(n), 0.0);
  double* rl = row_loss.data();
  const auto row = [=](const std::int64_t i) {
    const T* x = logits + i * vocab;
    const T mt = row_max(x, vocab);
    const double m = static_cast<double>(mt);
    const double sum = exp_shifted_sum(x, static_cast<T*>(nullptr), vocab, mt);
    const double l = m + std::log(sum);
    lse[i] = static_cast<T>(l);
    const std::int32_t t = targets[i];
    const double li = t < 0 ? 0.0 : l - static_cast<double>(x[t]) + z_loss_coef * l * l;
    loss[i] = static_cast<T>(li);
    rl[i] = li;
  };
  host_for("quopt::host::cross_entropy_forward", n, row, vocab);
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) total += rl[i];
  return total;
}

template <class T>
void cross_entropy_backward(const T* logits, const std::int32_t* targets, const T* lse, std::int64_t n,
                            std::int64_t vocab, double z_loss_coef, double dscale, T* dlogits) {
  if (n == 0) return;
  const auto row = [=](const std::int64_t i) {
    // Each output element depends only on the same input element and the saved lse, so dlogits may
    // alias logits.
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
    exp_shifted(x, dx, vocab, lse[i]);  // dx = p, elementwise, so dx may be x
    const double pt = static_cast<double>(dx[t]);
    for (std::int64_t j = 0; j < vocab; ++j) dx[j] = static_cast<T>(c * static_cast<double>(dx[j]));
    dx[t] = static_cast<T>(c * pt - dscale);
  };
  host_for("quopt::host::cross_entropy_backward", n, row, vocab);
}

template <class T>
double cross_entropy_forward_backward(T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                                      double z_loss_coef, double dscale, T* loss, T* lse) {
  if (n == 0) return 0.0;
  std::vector<double> row_loss(static_cast<std::size_t>(n), 0.0);
  double* rl = row_loss.data();
  const auto row = [=](const std::int64_t i) {
    T* x = logits + i * vocab;
    const std::int32_t t = targets[i];
    const T mt = row_max(x, vocab);
    const double xt = t < 0 ? 0.0 : static_cast<double>(x[t]);  // before x becomes dlogits
    const double sum = exp_shifted_sum(x, x, vocab, mt);           // x = e = exp(x - max)
    const double l = static_cast<double>(mt) + std::log(sum);
    lse[i] = static_cast<T>(l);
    const double li = t < 0 ? 0.0 : l - xt + z_loss_coef * l * l;
    loss[i] = static_cast<T>(li);
    rl[i] = li;
    if (t < 0) {
      for (std::int64_t j = 0; j < vocab; ++j) x[j] = T(0);
      return;
    }
    // d/dx_j [lse - x_t + z lse^2] = p_j (1 + 2 z lse) - [j == t], p_j = e_j / sum (z-loss: PaLM).
    const double c = dscale * (1.0 + 2.0 * z_loss_coef * l) / sum;
    const double et = static_cast<double>(x[t]);
    for (std::int64_t j = 0; j < vocab; ++j) x[j] = static_cast<T>(c * static_cast<double>(x[j]));
    x[t] = static_cast<T>(c * et - dscale);
  };
  host_for("quopt::host::cross_entropy_forward_backward", n, row, vocab);
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) total += rl[i];
  return total;
}

template double cross_entropy_forward<float>(const float*, const std::int32_t*, std::int64_t, std::int64_t,
                                             double, float*, float*);
template double cross_entropy_forward<double>(const double*, const std::int32_t*, std::int64_t, std::int64_t,
                                              double, double*, double*);
template double cross_entropy_forward_backward<float>(float*, const std::int32_t*, std::int64_t, std::int64_t,
                                                      double, double, float*, float*);
template double cross_entropy_forward_backward<double>(double*, const std::int32_t*, std::int64_t, std::int64_t,
                                                       double, double, double*, double*);
template void cross_entropy_backward<float>(const float*, const std::int32_t*, const float*, std::int64_t,
                                            std::int64_t, double, double, float*);
template void cross_entropy_backward<double>(const double*, const std::int32_t*, const double*, std::int64_t,
                                             std::int64_t, double, double, double*);

}  // namespace quopt::kernels::host
