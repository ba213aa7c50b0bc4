// sign_scaled / rms_normalize (Scion's LMOs): checks and routing to host or CUDA.
#include <cmath>

#include "kernels/dispatch.hpp"
#include "kernels/host/lmo.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/lmo.hpp"
#endif

namespace quopt::kernels {

namespace {
void check_in_place_or_disjoint(const char* op, const Tensor& x, const Tensor& out) {
  QUOPT_CHECK(out.raw() == x.raw() || !detail::overlaps(out, x), op, ": out ", out.describe(), " overlaps x ",
              x.describe(), " without being it; pass x itself (in place) or a separate buffer");
}
}  // namespace

void sign_scaled(const Tensor& x, double f, Tensor& out) {
  constexpr const char* op = "sign_scaled";
  detail::check_float(op, "x", x);
  detail::check_operand(op, "x", x, "out", out);
  QUOPT_CHECK(std::isfinite(f), op, ": f = ", f, " must be finite");
  check_in_place_or_disjoint(op, x, out);
  QUOPT_ROUTE(op, x, sign_scaled, x.data<T>(), x.numel(), f, out.data<T>());
}

void rms_normalize(const Tensor& x, int axis, double gain, double eps, Tensor& out) {
  constexpr const char* op = "rms_normalize";
  detail::check_float(op, "x", x);
  QUOPT_CHECK(x.ndim() == 1 || x.ndim() == 2, op, ": x is ", x.describe(), "; expected a 1-D or 2-D tensor");
  detail::check_like(op, "x", x, "out", out);
  detail::check_shape(op, "out", out, x.shape());
  QUOPT_CHECK(axis == 0 || axis == 1, op, ": axis = ", axis, " must be 0 (columns) or 1 (rows)");
  QUOPT_CHECK(std::isfinite(gain) && gain > 0.0 && std::isfinite(eps) && eps >= 0.0, op, ": gain = ", gain,
              " must be finite and > 0, eps = ", eps, " finite and >= 0");
  check_in_place_or_disjoint(op, x, out);
  const std::int64_t rows = x.ndim() == 1 ? 1 : x.dim(0), cols = x.ndim() == 1 ? x.dim(0) : x.dim(1);
  QUOPT_ROUTE(op, x, rms_normalize, x.data<T>(), rows, cols, axis, gain, eps, out.data<T>());
}

}  // namespace quopt::kernels
