// rmsnorm_forward / rmsnorm_backward: checks and routing to host or CUDA.
#include <cmath>

#include "kernels/dispatch.hpp"
#include "kernels/host/rmsnorm.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/rmsnorm.hpp"
#endif

namespace quopt::kernels {

namespace {

struct RowsCols {
  std::int64_t n = 0, c = 0;
};

// x [..., C] viewed as [N, C]; weight [C]; rstd holds N values; every other tensor like x.
RowsCols check_rmsnorm(const char* op, const Tensor& x, const Tensor& weight, const Tensor& rstd) {
  detail::check_float(op, "x", x);
  QUOPT_CHECK(x.ndim() >= 1, op, ": argument 'x' is ", x.describe(), "; expected [N, C]");
  RowsCols d;
  d.c = x.dim(-1);
  d.n = d.c == 0 ? 0 : x.numel() / d.c;
  detail::check_like(op, "x", x, "weight", weight);
  detail::check_shape(op, "weight", weight, Shape{d.c});
  detail::check_like(op, "x", x, "rstd", rstd);
  QUOPT_CHECK(rstd.numel() == d.n, op, ": argument 'rstd' is ", rstd.describe(), "; expected ", d.n,
              " values, one per row of x ", x.describe());
  return d;
}

}  // namespace

void rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps, Tensor& y, Tensor& rstd) {
  constexpr const char* op = "rmsnorm_forward";
  const RowsCols d = check_rmsnorm(op, x, weight, rstd);
  detail::check_like(op, "x", x, "y", y);
  detail::check_shape(op, "y", y, x.shape());
  QUOPT_CHECK(std::isfinite(eps) && eps >= 0.0, op, ": eps = ", eps,
              " must be finite and >= 0 (OLMo2 uses 1e-6; set model.norm_eps)");
  detail::check_no_overlap(op, "rstd", rstd, "x", x);
  detail::check_no_overlap(op, "rstd", rstd, "y", y);
  QUOPT_ROUTE(op, x, rmsnorm_forward, x.data<T>(), weight.data<T>(), eps, d.n, d.c, y.data<T>(),
              rstd.data<T>());
}

void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd, Tensor& dx,
                      Tensor& dweight) {
  constexpr const char* op = "rmsnorm_backward";
  const RowsCols d = check_rmsnorm(op, x, weight, rstd);
  detail::check_like(op, "x", x, "dy", dy);
  detail::check_shape(op, "dy", dy, x.shape());
  detail::check_like(op, "x", x, "dx", dx);
  detail::check_shape(op, "dx", dx, x.shape());
  detail::check_like(op, "x", x, "dweight", dweight);
  detail::check_shape(op, "dweight", dweight, Shape{d.c});
  detail::check_no_overlap(op, "dweight", dweight, "dy", dy);
  detail::check_no_overlap(op, "dweight", dweight, "x", x);
  detail::check_no_overlap(op, "dweight", dweight, "weight", weight);
  detail::check_no_overlap(op, "dweight", dweight, "rstd", rstd);
  detail::check_no_overlap(op, "dweight", dweight, "dx", dx);
  detail::check_no_overlap(op, "dx", dx, "rstd", rstd);
  detail::check_no_overlap(op, "dx", dx, "weight", weight);
  QUOPT_ROUTE(op, x, rmsnorm_backward, dy.data<T>(), x.data<T>(), weight.data<T>(), rstd.data<T>(), d.n, d.c,
              dx.data<T>(), dweight.data<T>());
}

}  // namespace quopt::kernels
