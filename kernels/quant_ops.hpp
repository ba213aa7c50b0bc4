#pragma once
// The quantization kernels: round-to-nearest AbsMax (RTN), the block-diagonal Walsh-Hadamard
// transform and QuEST's Gaussian-scaled fake quantizer with its trust mask. Same conventions as
// kernels/ops.hpp: Tensors in, shapes/dtypes/devices checked with messages naming the op and the
// argument, dispatch by device (host: Kokkos; CUDA: kernels/cuda/quant.cu; fp32 and fp64 on both). Tensors are contiguous row-major; x [..., C] is viewed as rows [N, C] with N = numel / C.
// Formulas, defaults and their sources: docs/quantization.md.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/tensor.hpp"

namespace quopt::kernels {

// ---- RTN AbsMax, symmetric ---------------------------------------------------------------------
// Bit widths the RTN grid supports (the study uses 4 and 8; 2 is the smallest width whose symmetric
// grid {-1, 0, 1} is not degenerate, 8 the largest an int8 holds).
inline constexpr int kRtnMinBits = 2;
inline constexpr int kRtnMaxBits = 8;

// Largest integer code of the symmetric b-bit grid, 2^(b-1) - 1 (QuaRot fake_quant/quant_utils.py
// get_minq_maxq, sym=True). The grid is {-m, ..., m}: 2^b - 1 levels; -2^(b-1) is not used.
inline constexpr int rtn_max_code(int bits) {
  return (1 << (bits - 1)) - 1;
}

// scale = absmax / (2^(b-1) - 1); a zero absmax gives scale 1 so that the group dequantizes to zeros
// without a division by zero (QuaRot ActQuantizer.find_params: `self.scale[tmp] = 1` where xmax == 0).
// A subnormal absmax whose quotient underflows to 0 is treated the same way.
inline double rtn_scale(double absmax, int bits) {
  const double s = absmax / static_cast<double>(rtn_max_code(bits));
  return s > 0.0 ? s : 1.0;
}

// Round half to even (the tie rule of torch.round, which QuaRot and GPTQ use) for |v| < 2^52: adding
// and subtracting 2^52 leaves an integer rounded in the default to-nearest-even mode. Unlike
// std::nearbyint (a libm call on baseline x86-64) it vectorises. Needs IEEE semantics (no -ffast-math).
inline double round_half_even(double v) {
  const double big = 4503599627370496.0;  // 2^52
  return std::copysign((std::fabs(v) + big) - big, v);
}

// Integer code clamp(round(x / scale), -m, m), rounding half to even. Clamping before rounding gives
// the same code (m is an integer) and keeps |v| small enough for round_half_even.
inline double rtn_code(double x, double scale, int max_code) {
  const double m = static_cast<double>(max_code);
  return round_half_even(std::clamp(x / scale, -m, m));
}

// Dequantized value code * scale.
inline double rtn_dequantize(double x, double scale, int max_code) {
  return rtn_code(x, scale, max_code) * scale;
}

// Fake-quantizes every row of x (per row: group_size 0) or every group of group_size consecutive
// columns (C % group_size == 0) with the symmetric AbsMax grid: scale = max|x| / (2^(b-1) - 1),
// xq = clamp(round(x / scale), -(2^(b-1) - 1), 2^(b-1) - 1) * scale. Per output row for weights
// [out, in], per token for activations [tokens, in]. bits in [kRtnMinBits, kRtnMaxBits].
// xq: like x (may be x itself: in place). scales: N values (per row) or N * C / group_size values
// (row-major [N, C / group_size]), x's dtype and device.
void rtn_quantize(const Tensor& x, int bits, std::int64_t group_size, Tensor& xq, Tensor& scales);

// ---- block-diagonal Walsh-Hadamard transform ------------------------------------------------------
// QuEST's rotation block (IST-DASLab/QuEST src/models/quantization/base_linear.py: a 128 x 128
// Hadamard matrix scaled by 2^(-7/2), repeated block-diagonally over the last dimension).
inline constexpr std::int64_t kHadamardBlock = 128;

// y[n, b*B:(b+1)*B] = x[n, b*B:(b+1)*B] H_B / sqrt(B) for every block b of the last dimension, with
// H_B the Sylvester-ordered Hadamard matrix (H_1 = [1], H_2k = [[H_k, H_k], [H_k, -H_k]]): a fast
// Walsh-Hadamard transform, O(B log B) per block. H_B / sqrt(B) is symmetric and orthonormal, so the
// transform is its own inverse. block_size is a power of two dividing C. y like x (may be x: in place).
void hadamard_transform(const Tensor& x, std::int64_t block_size, Tensor& y);

// ---- QuEST fake quantization (arXiv 2502.05003, IST-DASLab/QuEST) -----------------------------------
// Bit widths with a Gaussian-optimal scale in the reference table (OPTIMAL_GAUSSIAN_SCALES).
inline constexpr int kQuestMinBits = 1;
inline constexpr int kQuestMaxBits = 8;

// alpha_b: the MSE-optimal clipping scale of a standard Gaussian for a uniform 2^b-level grid
// (OPTIMAL_GAUSSIAN_SCALES, base_linear.py line 38). Throws quopt::Error for bits outside 1..8.
double quest_gaussian_alpha(int bits);
// Default trust factor T = alpha_b / (2^b - 1) (HalfHadamardTrustQuantizer.__init__, line 196).
double quest_default_trust(int bits);

// QuEST's centered quantizer on each row of x (apply hadamard_transform first; HalfHadamardTrustQuantizer):
//   rms = sqrt(mean(x^2)), scale = alpha_b * rms + 1e-8, step = 2 scale / (2^b - 1),
//   xq = round(clamp(x, -scale, scale) / step + 1/2) * step - step/2      (round half to even)
// i.e. the 2^b levels (k + 1/2) step, k in [-2^(b-1), 2^(b-1) - 1], no zero level, outer levels
// +-scale; mask = 1 where |xq - x| <= trust * rms, else 0 (the straight-through gradient multiplier).
// trust: the factor T (quest_default_trust(bits) is the reference default); must be finite and >= 0.
// xq like x (may be x). mask: like x (written as 0/1) or an undefined Tensor to skip it. scales: N
// values with x's dtype (the per-row scale alpha_b * rms + 1e-8) or undefined to skip.
void quest_quantize(const Tensor& x, int bits, double trust, Tensor& xq, Tensor& mask, Tensor& scales);

// grad *= mask elementwise (the masked straight-through backward); same shape, dtype and device.
void apply_mask(Tensor& grad, const Tensor& mask);

}  // namespace quopt::kernels
