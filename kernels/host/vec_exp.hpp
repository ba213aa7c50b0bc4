#pragma once
// exp for float written so that the compiler vectorises loops over it (no calls, no branches, no
// table look-ups): the softmax of attention and the cross-entropy spend most of their time in exp,
// and libm's scalar expf kept those loops scalar (28% of all instructions of an olmo2-tiny step).
//
// Method (Cephes expf, S. L. Moshier): x = n ln2 + r with n = round(x / ln2) and |r| <= ln2/2 (ln2
// split in two parts so r is exact), e^r by a degree-7 minimax polynomial, 2^n put into the exponent
// bits. Error bound, checked against libm (double exp rounded to float) over every float in the
// range in tests/unit/test_kernels_vec_exp.cpp: at most 2 ulp for x in [-87.33, 88.72] (results
// down to FLT_MIN, the smallest normal float). Outside: x > 88.72 gives +inf (like expf, which
// overflows above 88.7228); x < -87.33 gives +0 (expf gives a subnormal there, below 1.2e-38:
// an absolute error under FLT_MIN, which no softmax or loss sum can see); NaN gives NaN.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace quopt::kernels::host {

inline float vec_expf(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // ln 2 = kLn2Hi + kLn2Lo, kLn2Hi with 9 significant bits
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kMax = 88.7228317f;    // above: exp overflows float
  constexpr float kMin = -87.3365448f;   // below: exp is under FLT_MIN (flushed to 0)
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer (ties to even)
  const float xc = x > kMax ? kMax : (x < kMin ? kMin : x);
  const float n = (xc * kLog2e + kRound) - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  // Cephes expf polynomial: e^r = 1 + r + r^2 p(r) on [-ln2/2, ln2/2].
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = (p * (r * r) + r) + 1.0f;
  // 2^n: n in [-126, 128]; n = 128 only at the clamp kMax, handled by splitting off one factor of 2.
  const std::int32_t ni = static_cast<std::int32_t>(n);
  const std::int32_t n1 = ni > 127 ? 127 : ni;
  const std::uint32_t bits = static_cast<std::uint32_t>(n1 + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float y = er * scale;
  y = ni > 127 ? y * 2.0f : y;
  y = x > kMax ? std::numeric_limits<float>::infinity() : y;
  y = x < kMin ? 0.0f : y;
  return x != x ? x : y;  // NaN in, NaN out
}

// Loops of the softmax and the cross-entropy. fp32: vec_expf, vectorised; fp64 (gradient checks):
// std::exp. Sums run in double over kExpLanes interleaved partial sums (element j goes to partial
// j % kExpLanes, partials added in order), so the order is fixed whatever the vector width.
inline constexpr std::int64_t kExpLanes = 8;

inline float exp_of(float x) {
  return vec_expf(x);
}
inline double exp_of(double x) {
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
