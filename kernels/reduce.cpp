// sum_squares: checks and routing (host only for now).
#include "kernels/host/reduce.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"

namespace quopt::kernels {

double sum_squares(const Tensor& x) {
  constexpr const char* op = "sum_squares";
  detail::check_float(op, "x", x);
  detail::require_host(op, x);
  double result = 0.0;
  detail::with_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    result = host::sum_squares(x.data<T>(), x.numel());
  });
  return result;
}

}  // namespace quopt::kernels
