#pragma once
// The exp loops of the softmax (attention) and the cross-entropy: exp in the working precision, sums
// in double over kExpLanes interleaved partial sums (element j goes to partial j % kExpLanes, partials
// added in order), so the order is fixed whatever the thread count or vector width.
#include <cmath>
#include <cstdint>

namespace quopt::kernels::host {

inline constexpr std::int64_t kExpLanes = 8;

// libm's exp: a branch-free polynomial expf (Cephes) was tried and measured slower in the default
// SSE2 build (it did not vectorise there; docs/benchmarks.md).
template <class T>
T exp_of(T x) {
  return std::exp(x);
}

// x[j] = exp(x[j] - shift) for j < n.
template <class T>
void exp_shifted_inplace(T* x, std::int64_t n, T shift) {
  for (std::int64_t j = 0; j < n; ++j) x[j] = exp_of(x[j] - shift);
}

// sum_j exp(x[j] - shift), accumulated in double.
template <class T>
double sum_exp_shifted(const T* x, std::int64_t n, T shift) {
  double acc[kExpLanes] = {};
  std::int64_t j = 0;
  for (; j + kExpLanes <= n; j += kExpLanes)
    for (std::int64_t k = 0; k < kExpLanes; ++k) acc[k] += static_cast<double>(exp_of(x[j + k] - shift));
  for (std::int64_t k = 0; j < n; ++j, ++k) acc[k] += static_cast<double>(exp_of(x[j] - shift));
  double total = 0.0;
  for (double a : acc) total += a;
  return total;
}

// sum_j x[j] in double, the same fixed interleaving.
template <class T>
double sum_lanes(const T* x, std::int64_t n) {
  double acc[kExpLanes] = {};
  std::int64_t j = 0;
  for (; j + kExpLanes <= n; j += kExpLanes)
    for (std::int64_t k = 0; k < kExpLanes; ++k) acc[k] += static_cast<double>(x[j + k]);
  for (std::int64_t k = 0; j < n; ++j, ++k) acc[k] += static_cast<double>(x[j]);
  double total = 0.0;
  for (double a : acc) total += a;
  return total;
}

}  // namespace quopt::kernels::host
