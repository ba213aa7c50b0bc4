// rope_forward / rope_backward: checks and routing to host or CUDA.
#include <cmath>

#include "kernels/dispatch.hpp"
#include "kernels/host/rope.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/rope.hpp"
#endif

namespace quopt::kernels {

namespace {

void rope_dispatch(const char* op, const char* name, Tensor& x, double theta, bool inverse) {
  detail::check_float(op, name, x);
  detail::check_ndim(op, name, x, 4);
  QUOPT_CHECK(x.dim(3) % 2 == 0, op, ": argument '", name, "' is ", x.describe(),
              "; the head dimension D (last) must be even for the rotate-half pairs (i, i + D/2)");
  QUOPT_CHECK(std::isfinite(theta) && theta > 0.0, op, ": theta = ", theta,
              " must be finite and > 0 (OLMo2 uses 500000; set model.rope_theta)");
  QUOPT_ROUTE(op, x, rope, x.data<T>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3), theta, inverse);
}

}  // namespace

void rope_forward(Tensor& x, double theta) {
  rope_dispatch("rope_forward", "x", x, theta, false);
}

void rope_backward(Tensor& dx, double theta) {
  rope_dispatch("rope_backward", "dx", dx, theta, true);
}

}  // namespace quopt::kernels
