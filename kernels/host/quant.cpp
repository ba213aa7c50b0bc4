#include "kernels/host/quant.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/host/host_policy.hpp"
#include "kernels/quant_ops.hpp"

namespace quopt::kernels::host {

namespace {

// max_j |p[j]| with eight independent running maxima: GCC does not vectorise a floating-point max
// reduction without -ffast-math, and one accumulator would serialise on the max latency. NaNs are
// skipped (std::max keeps the accumulator); they still propagate through x / scale afterwards.
template <class T>
T abs_max(const T* p, std::int64_t len) {
  T acc[8] = {};
  std::int64_t j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; ++k) acc[k] = std::max(acc[k], std::fabs(p[j + k]));
  for (; j < len; ++j) acc[0] = std::max(acc[0], std::fabs(p[j]));
  T m = acc[0];
  for (int k = 1; k < 8; ++k) m = std::max(m, acc[k]);
  return m;
}

// sum_j p[j]^2 in double with eight independent partial sums (vectorisable; one accumulator would
// serialise on the add latency). Fixed order, so deterministic.
template <class T>
double sum_squares8(const T* p, std::int64_t len) {
  double acc[8] = {};
  std::int64_t j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; ++k) acc[k] += static_cast<double>(p[j + k]) * static_cast<double>(p[j + k]);
  for (; j < len; ++j) acc[0] += static_cast<double>(p[j]) * static_cast<double>(p[j]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Fake-quantizes one group with the scale s (computed in double by rtn_scale) and returns the scale
// to store. For float the codes are computed in float (as the float32 reference implementations do;
// twice the SIMD width) from the stored float scale, so xq == code * scale holds exactly; for double, in
// double. A scale that underflows to 0 in the dtype (max |x| subnormal) becomes 1, like a zero group.
template <class T>
T rtn_group(const T* xg, T* qg, std::int64_t g, double s, int max_code) {
  if constexpr (std::is_same_v<T, float>) {
    const float sf = static_cast<float>(s) > 0.0f ? static_cast<float>(s) : 1.0f;
    const float m = static_cast<float>(max_code);
    const float big = 8388608.0f;  // 2^23: round half to even in float for |v| <= m < 2^23
    for (std::int64_t j = 0; j < g; ++j) {
      const float v = std::clamp(xg[j] / sf, -m, m);
      qg[j] = std::copysign((std::fabs(v) + big) - big, v) * sf;
    }
    return sf;
  } else {
    for (std::int64_t j = 0; j < g; ++j) qg[j] = rtn_dequantize(xg[j], s, max_code);
    return s;
  }
}

}  // namespace

template <class T>
void rtn_quantize(const T* x, std::int64_t n, std::int64_t c, std::int64_t g, int bits, T* xq, T* scales) {
  const std::int64_t groups_per_row = c / g;
  const int max_code = rtn_max_code(bits);
  // One task per (row, group): groups are independent, so a per-row quantizer also parallelises over
  // rows only (groups_per_row == 1). Reads of a group finish before its writes, so xq may equal x.
  host_for("quopt::host::rtn_quantize", n * groups_per_row,
                       [=](const std::int64_t task) {
                         const T* xg = x + task * g;  // rows are contiguous, groups tile them
                         T* qg = xq + task * g;
                         const T amax = abs_max(xg, g);
                         const double s = rtn_scale(static_cast<double>(amax), bits);
                         scales[task] = rtn_group(xg, qg, g, s, max_code);
                       }, g);
}

namespace {

// The first three butterfly stages (half-widths 1, 2, 4) on each group of 8 entries, unrolled: the
// generic loop below would run inner loops of length 1, 2 and 4 there. Same operations in the same
// order as the generic stages, so the result is identical.
template <class T>
void wht_first_stages_8(T* v, std::int64_t len) {
  for (std::int64_t s = 0; s < len; s += 8) {
    T* p = v + s;
    const T b0 = p[0] + p[1], b1 = p[0] - p[1], b2 = p[2] + p[3], b3 = p[2] - p[3];
    const T b4 = p[4] + p[5], b5 = p[4] - p[5], b6 = p[6] + p[7], b7 = p[6] - p[7];
    const T c0 = b0 + b2, c2 = b0 - b2, c1 = b1 + b3, c3 = b1 - b3;
    const T c4 = b4 + b6, c6 = b4 - b6, c5 = b5 + b7, c7 = b5 - b7;
    p[0] = c0 + c4;
    p[4] = c0 - c4;
    p[1] = c1 + c5;
    p[5] = c1 - c5;
    p[2] = c2 + c6;
    p[6] = c2 - c6;
    p[3] = c3 + c7;
    p[7] = c3 - c7;
  }
}

}  // namespace

template <class T>
void hadamard_transform(const T* x, std::int64_t n, std::int64_t c, std::int64_t block, T* y) {
  const T norm = static_cast<T>(1.0 / std::sqrt(static_cast<double>(block)));
  // One task per block of one row; blocks are disjoint, so the in-place case is race-free.
  host_for("quopt::host::hadamard_transform", n * (c / block),
                       [=](const std::int64_t task) {
                         const T* xb = x + task * block;
                         T* yb = y + task * block;
                         if (yb != xb) std::copy(xb, xb + block, yb);
                         // Sylvester butterflies: after the stage of half-width h, every group of 2h
                         // entries holds H_2h applied to it; log2(block) stages in all.
                         std::int64_t h = 1;
                         if (block >= 8) {
                           wht_first_stages_8(yb, block);
                           h = 8;
                         }
                         for (; h < block; h *= 2) {
                           for (std::int64_t s = 0; s < block; s += 2 * h) {
                             T* lo = yb + s;
                             T* hi = yb + s + h;
                             for (std::int64_t j = 0; j < h; ++j) {
                               const T a = lo[j], b = hi[j];
                               lo[j] = a + b;
                               hi[j] = a - b;
                             }
                           }
                         }
                         for (std::int64_t j = 0; j < block; ++j) yb[j] *= norm;
                       }, block);
}

template <class T>
void quest_quantize(const T* x, std::int64_t n, std::int64_t c, int bits, double alpha, double trust, T* xq,
                    T* mask, T* scales) {
  const double levels = std::ldexp(1.0, bits);  // 2^b
  const double k_lo = -levels / 2.0 + 1.0;      // codes k of round(x / step + 1/2): [-2^(b-1) + 1, 2^(b-1)]
  const double k_hi = levels / 2.0;
  host_for("quopt::host::quest_quantize", n, [=](const std::int64_t i) {
    const T* xi = x + i * c;
    T* qi = xq + i * c;
    const double rms = std::sqrt(sum_squares8(xi, c) / static_cast<double>(c));
    // + 1e-8 as in the reference (`scale = OPTIMAL_GAUSSIAN_SCALES[bits] * std + 1e-8`): a zero row
    // gets a tiny positive scale instead of a division by zero.
    const double scale = alpha * rms + 1e-8;
    const double step = 2.0 * scale / (levels - 1.0);
    const double tol = trust * rms;
    for (std::int64_t j = 0; j < c; ++j) {
      const double v = static_cast<double>(xi[j]);
      const double clipped = std::clamp(v, -scale, scale);
      // The clamp of k only guards against rounding at |x| = scale; exact arithmetic never leaves the range.
      const double k = std::clamp(round_half_even(clipped / step + 0.5), k_lo, k_hi);
      const T q = static_cast<T>(k * step - 0.5 * step);
      if (mask != nullptr) mask[i * c + j] = std::fabs(static_cast<double>(q) - v) <= tol ? T(1) : T(0);
      qi[j] = q;  // after the mask: xq may alias x
    }
    if (scales != nullptr) scales[i] = static_cast<T>(scale);
  }, c);
}

template <class T>
void apply_mask(T* g, const T* m, std::int64_t count) {
  host_for("quopt::host::apply_mask", count,
                       [=](const std::int64_t i) { g[i] *= m[i]; });
}

#define QUOPT_INSTANTIATE(T)                                                                              \
  template void rtn_quantize<T>(const T*, std::int64_t, std::int64_t, std::int64_t, int, T*, T*);         \
  template void hadamard_transform<T>(const T*, std::int64_t, std::int64_t, std::int64_t, T*);            \
  template void quest_quantize<T>(const T*, std::int64_t, std::int64_t, int, double, double, T*, T*, T*); \
  template void apply_mask<T>(T*, const T*, std::int64_t);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::host
