// sum_squares: checks and routing to host or CUDA.
#include "kernels/host/reduce.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/reduce.hpp"
#endif

namespace quopt::kernels {

double sum_squares(const Tensor& x) {
  constexpr const char* op = "sum_squares";
  detail::check_float(op, "x", x);
  double result = 0.0;
  result = QUOPT_ROUTE(op, x, sum_squares, x.data<T>(), x.numel());
  return result;
}

}  // namespace quopt::kernels
