#pragma once
// Row reductions of the host kernels (softmax in attention, cross-entropy, the fused classifier,
// RMSNorm) besides exp itself (vec_exp.hpp): max and sums over kExpLanes interleaved lanes (element j
// goes to lane j % kExpLanes, lanes combined in order), so the results never depend on the thread
// count or the vector width, and the loops vectorise without reassociation.
#include <cstdint>

#ifdef __SSE2__
#include <immintrin.h>
#endif

#include "kernels/host/vec_exp.hpp"

namespace quopt::kernels::host {

// max_j x[j] (n >= 1); max is exact, so the lane order is immaterial, it only lets the loop vectorise.
template <class T>
T row_max(const T* x, std::int64_t n) {
  T lane[kExpLanes];
  for (std::int64_t k = 0; k < kExpLanes; ++k) lane[k] = x[0];
  std::int64_t j = 0;
  for (; j + kExpLanes <= n; j += kExpLanes)
    for (std::int64_t k = 0; k < kExpLanes; ++k) lane[k] = x[j + k] > lane[k] ? x[j + k] : lane[k];
  T m = x[0];
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  for (std::int64_t k = 0; k < kExpLanes; ++k) m = lane[k] > m ? lane[k] : m;
  return m;
}
#ifdef __SSE2__
// float: GCC does not vectorise the lane loop above without -ffinite-math-only, so SSE (x86-64's
// baseline) directly. maxps(a, b) is a > b ? a : b, as above.
template <>
inline float row_max<float>(const float* x, std::int64_t n) {
  __m128 a = _mm_set1_ps(x[0]), b = a;
  std::int64_t j = 0;
  for (; j + kExpLanes <= n; j += kExpLanes) {
    a = _mm_max_ps(_mm_loadu_ps(x + j), a);
    b = _mm_max_ps(_mm_loadu_ps(x + j + 4), b);
  }
  alignas(16) float lane[kExpLanes];
  _mm_store_ps(lane, a);
  _mm_store_ps(lane + 4, b);
  float m = x[0];
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  for (std::int64_t k = 0; k < kExpLanes; ++k) m = lane[k] > m ? lane[k] : m;
  return m;
}
#endif

// sum_j term(j) in double over the fixed lanes (term returns double; inlined, so the loop vectorises).
template <class F>
double sum_lanes_of(std::int64_t n, const F& term) {
  double acc[kExpLanes] = {};
  std::int64_t j = 0;
  for (; j + kExpLanes <= n; j += kExpLanes)
    for (std::int64_t k = 0; k < kExpLanes; ++k) acc[k] += term(j + k);
  for (std::int64_t k = 0; j < n; ++j, ++k) acc[k] += term(j);
  double total = 0.0;
  for (double a : acc) total += a;
  return total;
}

// sum_j x[j] in double over the fixed lanes.
template <class T>
double sum_lanes(const T* x, std::int64_t n) {
  return sum_lanes_of(n, [x](std::int64_t j) { return static_cast<double>(x[j]); });
}

}  // namespace quopt::kernels::host
