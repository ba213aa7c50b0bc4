// rtn_quantize / hadamard_transform / quest_quantize / apply_mask: checks and routing to host or CUDA.
#include <cmath>

#include "kernels/dispatch.hpp"
#include "kernels/host/quant.hpp"
#include "kernels/quant_ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/quant.hpp"
#endif

namespace quopt::kernels {

namespace {

struct Rows {
  std::int64_t n = 0, c = 0;
};

// x [..., C] viewed as [N, C].
Rows rows_of(const char* op, const Tensor& x) {
  detail::check_float(op, "x", x);
  QUOPT_CHECK(x.ndim() >= 1, op, ": argument 'x' is ", x.describe(),
              "; expected at least one dimension [..., C]");
  Rows r;
  r.c = x.dim(-1);
  r.n = r.c == 0 ? 0 : x.numel() / r.c;
  return r;
}

// out must be x itself (in place) or memory disjoint from x.
void check_same_or_disjoint(const char* op, const char* out_name, const Tensor& out, const Tensor& x) {
  if (out.numel() > 0 && out.raw() == x.raw()) return;
  detail::check_no_overlap(op, out_name, out, "x", x);
}

void check_output_like_x(const char* op, const char* name, const Tensor& out, const Tensor& x) {
  detail::check_like(op, "x", x, name, out);
  detail::check_shape(op, name, out, x.shape());
}

}  // namespace

void rtn_quantize(const Tensor& x, int bits, std::int64_t group_size, Tensor& xq, Tensor& scales) {
  constexpr const char* op = "rtn_quantize";
  const Rows r = rows_of(op, x);
  QUOPT_CHECK(bits >= kRtnMinBits && bits <= kRtnMaxBits, op, ": bits = ", bits, " is not supported; use ",
              kRtnMinBits, "..", kRtnMaxBits, " (the symmetric AbsMax grid has 2^bits - 1 levels)");
  QUOPT_CHECK(group_size >= 0, op, ": group_size = ", group_size,
              " must be >= 0 (0: one scale per row, g > 0: one scale per g columns)");
  QUOPT_CHECK(group_size == 0 || r.c % group_size == 0, op, ": group_size = ", group_size,
              " does not divide the last dimension of x ", x.describe(),
              "; choose a group size that divides it or 0 for one scale per row");
  const std::int64_t g = group_size == 0 ? r.c : group_size;
  const std::int64_t n_scales = g == 0 ? 0 : r.n * (r.c / g);
  check_output_like_x(op, "xq", xq, x);
  check_same_or_disjoint(op, "xq", xq, x);
  detail::check_like(op, "x", x, "scales", scales);
  QUOPT_CHECK(scales.numel() == n_scales, op, ": argument 'scales' is ", scales.describe(), "; expected ",
              n_scales, " values (", r.n, " rows x ", (g == 0 ? 0 : r.c / g), " groups per row) for x ",
              x.describe(), " with group_size ", group_size);
  detail::check_no_overlap(op, "scales", scales, "x", x);
  detail::check_no_overlap(op, "scales", scales, "xq", xq);
  if (r.n == 0 || r.c == 0) return;
  QUOPT_ROUTE(op, x, rtn_quantize, x.data<T>(), r.n, r.c, g, bits, xq.data<T>(), scales.data<T>());
}

void hadamard_transform(const Tensor& x, std::int64_t block_size, Tensor& y) {
  constexpr const char* op = "hadamard_transform";
  const Rows r = rows_of(op, x);
  QUOPT_CHECK(block_size >= 1 && (block_size & (block_size - 1)) == 0, op, ": block_size = ", block_size,
              " must be a power of two (QuEST uses ", kHadamardBlock, ")");
  QUOPT_CHECK(r.c % block_size == 0, op, ": the last dimension of x ", x.describe(),
              " is not a multiple of the Hadamard block size ", block_size,
              "; pad the features to a multiple of it or choose a smaller power-of-two block");
  check_output_like_x(op, "y", y, x);
  check_same_or_disjoint(op, "y", y, x);
  if (r.n == 0 || r.c == 0) return;
  QUOPT_ROUTE(op, x, hadamard_transform, x.data<T>(), r.n, r.c, block_size, y.data<T>());
}

double quest_gaussian_alpha(int bits) {
  // IST-DASLab/QuEST src/models/quantization/base_linear.py, OPTIMAL_GAUSSIAN_SCALES (line 38, commit
  // c295afd): the clipping scale (in standard deviations) minimising the MSE of a standard Gaussian
  // under a uniform 2^b-level grid. The reference also has 1.585 bits (ternary), which has no integer width.
  switch (bits) {
    case 1:
      return 0.7978845587140913;
    case 2:
      return 1.4935346200015913;
    case 3:
      return 2.051068354131873;
    case 4:
      return 2.513930578568423;
    case 5:
      return 2.9160938834961225;
    case 6:
      return 3.276597282593217;
    case 7:
      return 3.6010497188221655;
    case 8:
      return 3.884938678807525;
    default:
      fail("QuEST: bits = ", bits, " has no Gaussian-optimal scale; use ", kQuestMinBits, "..", kQuestMaxBits,
           " (the table of IST-DASLab/QuEST OPTIMAL_GAUSSIAN_SCALES)");
  }
}

double quest_default_trust(int bits) {
  // HalfHadamardTrustQuantizer: `trust = OPTIMAL_GAUSSIAN_SCALES[self.bits] / (self.n_levels - 1)`.
  return quest_gaussian_alpha(bits) / (std::ldexp(1.0, bits) - 1.0);
}

void quest_quantize(const Tensor& x, int bits, double trust, Tensor& xq, Tensor& mask, Tensor& scales) {
  constexpr const char* op = "quest_quantize";
  const Rows r = rows_of(op, x);
  const double alpha = quest_gaussian_alpha(bits);
  QUOPT_CHECK(std::isfinite(trust) && trust >= 0.0, op, ": trust = ", trust,
              " must be finite and >= 0 (the reference default is alpha_b / (2^b - 1) = ",
              quest_default_trust(bits), " for ", bits, " bits)");
  check_output_like_x(op, "xq", xq, x);
  check_same_or_disjoint(op, "xq", xq, x);
  if (mask.defined()) {
    check_output_like_x(op, "mask", mask, x);
    detail::check_no_overlap(op, "mask", mask, "x", x);
    detail::check_no_overlap(op, "mask", mask, "xq", xq);
  }
  if (scales.defined()) {
    detail::check_like(op, "x", x, "scales", scales);
    QUOPT_CHECK(scales.numel() == r.n, op, ": argument 'scales' is ", scales.describe(), "; expected ", r.n,
                " values, one per row of x ", x.describe());
    detail::check_no_overlap(op, "scales", scales, "x", x);
    detail::check_no_overlap(op, "scales", scales, "xq", xq);
    if (mask.defined()) detail::check_no_overlap(op, "scales", scales, "mask", mask);
  }
  if (r.n == 0 || r.c == 0) return;
  QUOPT_ROUTE(op, x, quest_quantize, x.data<T>(), r.n, r.c, bits, alpha, trust, xq.data<T>(),
              mask.defined() ? mask.data<T>() : nullptr, scales.defined() ? scales.data<T>() : nullptr);
}

void apply_mask(Tensor& grad, const Tensor& mask) {
  constexpr const char* op = "apply_mask";
  detail::check_float(op, "grad", grad);
  detail::check_like(op, "grad", grad, "mask", mask);
  detail::check_shape(op, "mask", mask, grad.shape());
  detail::check_no_overlap(op, "grad", grad, "mask", mask);
  if (grad.numel() == 0) return;
  QUOPT_ROUTE(op, grad, apply_mask, grad.data<T>(), mask.data<T>(), grad.numel());
}

}  // namespace quopt::kernels
