// Vectorised exp (see vec_exp.hpp): the variant list, and the shifted / summed loops around a
// variant's kernel. A tail shorter than the widest vector goes through a padded buffer, so every
// element is computed by the same vector code wherever it sits in the row.
#include "kernels/host/vec_exp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#ifdef QUOPT_VEC_EXP_X86
#include "kernels/host/simd/exp_x86.hpp"
#endif

namespace quopt::kernels::host {

namespace {

constexpr std::int64_t kMaxWidth = 16;  // widest variant (AVX-512: 16 floats)
constexpr std::int64_t kChunk = 256;    // floats per exp-then-sum step (1 KiB: stays in L1); a multiple of kMaxWidth

void exp_libm(const float* x, float* y, std::int64_t n, float shift) {
  for (std::int64_t j = 0; j < n; ++j) y[j] = std::exp(x[j] - shift);
}

std::vector<ExpVariant> detect() {
  std::vector<ExpVariant> v;
#ifdef QUOPT_VEC_EXP_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512f", 16, simd::exp_avx512});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v.push_back({"avx2", 8, simd::exp_avx2});
  v.push_back({"sse", 4, simd::exp_sse});
#endif
  v.push_back({"libm", 1, exp_libm});
  return v;
}

// The whole vectors straight through the variant's kernel; the tail (shorter than the widest vector)
// through a buffer padded with -inf (exp = 0).
void shifted(const float* x, float* y, std::int64_t n, float shift, const ExpVariant& v) {
  const std::int64_t body = n / kMaxWidth * kMaxWidth;
  if (body > 0) v.kernel(x, y, body, shift);
  if (body == n) return;
  float buf[kMaxWidth];
  std::fill(std::copy(x + body, x + n, buf), buf + kMaxWidth, -std::numeric_limits<float>::infinity());
  v.kernel(buf, buf, kMaxWidth, shift);
  std::copy(buf, buf + (n - body), y + body);
}

}  // namespace

const std::vector<ExpVariant>& exp_variants() {
  static const std::vector<ExpVariant> variants = detect();
  return variants;
}

const ExpVariant& exp_variant() {
  return exp_variants().front();
}

void exp_shifted(const float* x, float* y, std::int64_t n, float shift, const ExpVariant& v) {
  shifted(x, y, n, shift, v);
}

void exp_shifted(const double* x, double* y, std::int64_t n, double shift) {
  for (std::int64_t j = 0; j < n; ++j) y[j] = std::exp(x[j] - shift);
}

double exp_shifted_sum(const float* x, float* y, std::int64_t n, float shift, const ExpVariant& v) {
  double acc[kExpLanes] = {};
  float tmp[kChunk];
  for (std::int64_t j0 = 0; j0 < n; j0 += kChunk) {  // kChunk is a multiple of kExpLanes
    const std::int64_t m = std::min(kChunk, n - j0);
    float* e = y ? y + j0 : tmp;
    shifted(x + j0, e, m, shift, v);
    std::int64_t j = 0;
    for (; j + kExpLanes <= m; j += kExpLanes)
      for (std::int64_t k = 0; k < kExpLanes; ++k) acc[k] += static_cast<double>(e[j + k]);
    for (std::int64_t k = 0; j < m; ++j, ++k) acc[k] += static_cast<double>(e[j]);
  }
  double total = 0.0;
  for (double a : acc) total += a;
  return total;
}

double exp_shifted_sum(const double* x, double* y, std::int64_t n, double shift) {
  double acc[kExpLanes] = {};
  for (std::int64_t j = 0; j < n; ++j) {
    const double e = std::exp(x[j] - shift);
    if (y) y[j] = e;
    acc[j % kExpLanes] += e;
  }
  double total = 0.0;
  for (double a : acc) total += a;
  return total;
}

}  // namespace quopt::kernels::host
