// The PSGD-Kron primitives (kernels/psgd_ops.hpp): checks and routing to host or CUDA.
#include <cmath>

#include "kernels/dispatch.hpp"
#include "kernels/host/psgd.hpp"
#include "kernels/psgd_ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/psgd.hpp"
#endif

namespace quopt::kernels {

namespace {

void check_side(const char* op, int side) {
  QUOPT_CHECK(side == 0 || side == 1, op, ": side = ", side,
              "; expected 0 (rows, from the left) or 1 (columns)");
}

void check_matrix(const char* op, const char* name, const Tensor& x) {
  detail::check_float(op, name, x);
  detail::check_ndim(op, name, x, 2);
  detail::blas_int(op, x.dim(0));
  detail::blas_int(op, x.dim(1));
}

void check_square(const char* op, const char* name, const Tensor& a, std::int64_t n) {
  detail::check_shape(op, name, a, {n, n});
}

void check_finite_scalar(const char* op, const char* name, double v) {
  QUOPT_CHECK(std::isfinite(v), op, ": ", name, " = ", v, " must be finite");
}

// The two statistics of a factor update: q's dtype, device and shape.
void check_update(const char* op, const Tensor& q, const Tensor& t1, const Tensor& t2, double lr) {
  detail::check_like(op, "q", q, "t1", t1);
  detail::check_like(op, "q", q, "t2", t2);
  detail::check_shape(op, "t1", t1, q.shape());
  detail::check_shape(op, "t2", t2, q.shape());
  detail::check_no_overlap(op, "q", q, "t1", t1);
  detail::check_no_overlap(op, "q", q, "t2", t2);
  check_finite_scalar(op, "lr", lr);
}

}  // namespace

void triangular_apply(const Tensor& f, int side, bool trans, bool solve, Tensor& x) {
  constexpr const char* op = "triangular_apply";
  check_side(op, side);
  check_matrix(op, "x", x);
  detail::check_like(op, "x", x, "f", f);
  check_square(op, "f", f, x.dim(side));
  detail::check_no_overlap(op, "x", x, "f", f);
  QUOPT_ROUTE(op, x, triangular_apply, f.data<T>(), side, trans, solve, x.data<T>(), x.dim(0), x.dim(1));
}

void diagonal_apply(const Tensor& d, int side, bool solve, Tensor& x) {
  constexpr const char* op = "diagonal_apply";
  check_side(op, side);
  check_matrix(op, "x", x);
  detail::check_like(op, "x", x, "d", d);
  detail::check_shape(op, "d", d, {x.dim(side)});
  detail::check_no_overlap(op, "x", x, "d", d);
  QUOPT_ROUTE(op, x, diagonal_apply, d.data<T>(), side, solve, x.data<T>(), x.dim(0), x.dim(1));
}

void gram(const Tensor& x, bool transposed, Tensor& c) {
  constexpr const char* op = "gram";
  check_matrix(op, "x", x);
  detail::check_like(op, "x", x, "c", c);
  const std::int64_t n = x.dim(transposed ? 1 : 0), k = x.dim(transposed ? 0 : 1);
  check_square(op, "c", c, n);
  detail::check_no_overlap(op, "c", c, "x", x);
  QUOPT_ROUTE(op, x, gram, x.data<T>(), n, k, transposed, c.data<T>());
}

void sum_squares_axis(const Tensor& x, int side, Tensor& out) {
  constexpr const char* op = "sum_squares_axis";
  check_side(op, side);
  check_matrix(op, "x", x);
  detail::check_like(op, "x", x, "out", out);
  detail::check_shape(op, "out", out, {x.dim(side)});
  detail::check_no_overlap(op, "out", out, "x", x);
  QUOPT_ROUTE(op, x, sum_squares_axis, x.data<T>(), x.dim(0), x.dim(1), side, out.data<T>());
}

double abs_sum(const Tensor& x) {
  constexpr const char* op = "abs_sum";
  detail::check_float(op, "x", x);
  return QUOPT_ROUTE(op, x, abs_sum, x.data<T>(), x.numel());
}

double max_abs(const Tensor& x) {
  constexpr const char* op = "max_abs";
  detail::check_float(op, "x", x);
  return QUOPT_ROUTE(op, x, max_abs, x.data<T>(), x.numel());
}

void divide(const Tensor& x, double d, Tensor& out) {
  constexpr const char* op = "divide";
  detail::check_float(op, "x", x);
  detail::check_operand(op, "x", x, "out", out);
  check_finite_scalar(op, "d", d);
  QUOPT_CHECK(d != 0.0, op, ": division by zero");
  QUOPT_ROUTE(op, x, divide, x.data<T>(), x.numel(), d, out.data<T>());
}

void decayed_update(Tensor& w, const Tensor& d, double lr, double wd) {
  constexpr const char* op = "decayed_update";
  detail::check_float(op, "w", w);
  detail::check_operand(op, "w", w, "d", d);
  detail::check_no_overlap(op, "w", w, "d", d);
  check_finite_scalar(op, "lr", lr);
  check_finite_scalar(op, "wd", wd);
  QUOPT_ROUTE(op, w, decayed_update, w.data<T>(), d.data<T>(), w.numel(), lr, wd);
}

double clip_rms(Tensor& x, double clip) {
  constexpr const char* op = "clip_rms";
  detail::check_float(op, "x", x);
  QUOPT_CHECK(!std::isnan(clip), op, ": clip is NaN");
  return QUOPT_ROUTE(op, x, clip_rms, x.data<T>(), x.numel(), clip);
}

double norm_lower_bound(const Tensor& s) {
  constexpr const char* op = "norm_lower_bound";
  check_matrix(op, "s", s);
  check_square(op, "s", s, s.dim(0));
  return QUOPT_ROUTE(op, s, norm_lower_bound, s.data<T>(), s.dim(0));
}

bool psgd_diagonal_update(Tensor& q, const Tensor& t1, const Tensor& t2, double lr) {
  constexpr const char* op = "psgd_diagonal_update";
  detail::check_float(op, "q", q);
  detail::check_ndim(op, "q", q, 1);
  check_update(op, q, t1, t2, lr);
  return QUOPT_ROUTE(op, q, psgd_diagonal_update, q.data<T>(), t1.data<T>(), t2.data<T>(), q.numel(), lr);
}

bool psgd_triangular_update(Tensor& q, const Tensor& t1, const Tensor& t2, double lr) {
  constexpr const char* op = "psgd_triangular_update";
  check_matrix(op, "q", q);
  check_square(op, "q", q, q.dim(0));
  check_update(op, q, t1, t2, lr);
  return QUOPT_ROUTE(op, q, psgd_triangular_update, q.data<T>(), t1.data<T>(), t2.data<T>(), q.dim(0), lr);
}

}  // namespace quopt::kernels
