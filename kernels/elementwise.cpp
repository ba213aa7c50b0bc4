// add / axpy / scale / fill: checks and routing to host or CUDA.
#include <cmath>

#include "kernels/dispatch.hpp"
#include "kernels/host/elementwise.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/elementwise.hpp"
#endif

namespace quopt::kernels {

using detail::check_operand;
using detail::run;

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  constexpr const char* op = "add";
  detail::check_float(op, "a", a);
  check_operand(op, "a", a, "b", b);
  check_operand(op, "a", a, "out", out);
  const std::int64_t n = a.numel();
  QUOPT_ROUTE(op, a, add, a.data<T>(), b.data<T>(), out.data<T>(), n);
}

void axpy(double alpha, const Tensor& x, Tensor& y) {
  constexpr const char* op = "axpy";
  detail::check_float(op, "x", x);
  check_operand(op, "x", x, "y", y);
  QUOPT_CHECK(std::isfinite(alpha), op, ": alpha = ", alpha, " must be finite");
  const std::int64_t n = x.numel();
  QUOPT_ROUTE(op, x, axpy, alpha, x.data<T>(), y.data<T>(), n);
}

void scale(Tensor& x, double s) {
  constexpr const char* op = "scale";
  detail::check_float(op, "x", x);
  const std::int64_t n = x.numel();
  QUOPT_ROUTE(op, x, scale, x.data<T>(), s, n);
}

void fill(Tensor& x, double value) {
  constexpr const char* op = "fill";
  detail::check_float(op, "x", x);
  const std::int64_t n = x.numel();
  QUOPT_ROUTE(op, x, fill, x.data<T>(), value, n);
}

}  // namespace quopt::kernels
