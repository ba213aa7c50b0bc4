// The matrix optimizers' primitives (kernels/optim_ops.hpp): checks and routing to host or CUDA.
#include <cmath>

#include "kernels/dispatch.hpp"
#include "kernels/host/optim.hpp"
#include "kernels/optim_ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/optim.hpp"
#endif

namespace quopt::kernels {

namespace {

void check_square(const char* op, const char* name, const Tensor& a) {
  detail::check_float(op, name, a);
  QUOPT_CHECK(a.ndim() == 2 && a.dim(0) == a.dim(1), op, ": '", name, "' is ", a.describe(),
              "; expected a square matrix");
}

void check_finite_scalar(const char* op, const char* name, double v) {
  QUOPT_CHECK(std::isfinite(v), op, ": ", name, " = ", v, " must be finite");
}

// The block [rows, cols] at (row0, col0) lies inside the 2-D full.
void check_block(const char* op, const Tensor& full, std::int64_t row0, std::int64_t col0,
                 const Tensor& block) {
  detail::check_float(op, "full", full);
  detail::check_ndim(op, "full", full, 2);
  detail::check_like(op, "full", full, "block", block);
  detail::check_ndim(op, "block", block, 2);
  QUOPT_CHECK(
      row0 >= 0 && col0 >= 0 && row0 + block.dim(0) <= full.dim(0) && col0 + block.dim(1) <= full.dim(1), op,
      ": a ", shape_str(block.shape()), " block at (", row0, ", ", col0, ") lies outside ", full.describe());
  detail::check_no_overlap(op, "block", block, "full", full);
}

}  // namespace

void ema(Tensor& v, const Tensor& x, double a, double b, bool square) {
  constexpr const char* op = "ema";
  detail::check_float(op, "v", v);
  detail::check_operand(op, "v", v, "x", x);
  check_finite_scalar(op, "a", a);
  check_finite_scalar(op, "b", b);
  QUOPT_ROUTE(op, v, ema, v.data<T>(), x.data<T>(), v.numel(), a, b, square);
}

void adam_direction(const Tensor& m, const Tensor& v, double c, double eps, Tensor& out) {
  constexpr const char* op = "adam_direction";
  detail::check_float(op, "m", m);
  detail::check_operand(op, "m", m, "v", v);
  detail::check_operand(op, "m", m, "out", out);
  check_finite_scalar(op, "c", c);
  check_finite_scalar(op, "eps", eps);
  QUOPT_ROUTE(op, m, adam_direction, m.data<T>(), v.data<T>(), m.numel(), c, eps, out.data<T>());
}

void add_diagonal(Tensor& a, double value) {
  constexpr const char* op = "add_diagonal";
  check_square(op, "a", a);
  check_finite_scalar(op, "value", value);
  QUOPT_ROUTE(op, a, add_diagonal, a.data<T>(), a.dim(0), value);
}

void scale_columns(Tensor& a, const Tensor& s) {
  constexpr const char* op = "scale_columns";
  detail::check_float(op, "a", a);
  detail::check_ndim(op, "a", a, 2);
  detail::check_like(op, "a", a, "s", s);
  detail::check_shape(op, "s", s, {a.dim(1)});
  detail::check_no_overlap(op, "a", a, "s", s);
  QUOPT_ROUTE(op, a, scale_columns, a.data<T>(), a.dim(0), a.dim(1), s.data<T>());
}

double max_abs_minus_identity(const Tensor& a) {
  constexpr const char* op = "max_abs_minus_identity";
  check_square(op, "a", a);
  return QUOPT_ROUTE(op, a, max_abs_minus_identity, a.data<T>(), a.dim(0));
}

void convert(const Tensor& src, Tensor& dst) {
  constexpr const char* op = "convert";
  detail::check_float(op, "src", src);
  detail::check_float(op, "dst", dst);
  detail::check_device(op, "src", src, "dst", dst);
  detail::check_same_numel(op, "src", src, "dst", dst);
  detail::check_no_overlap(op, "dst", dst, "src", src);
  const std::int64_t n = src.numel();
  [[maybe_unused]] const detail::Backend backend = detail::route(op, src);
  detail::with_float(src.dtype(), [&](auto s_tag) {
    using S = decltype(s_tag);
    detail::with_float(dst.dtype(), [&](auto d_tag) {
      using D = decltype(d_tag);
#ifdef QUOPT_HAVE_CUDA
      if (backend == detail::Backend::Cuda) return cuda::convert(src.data<S>(), n, dst.data<D>());
#endif
      return host::convert(src.data<S>(), n, dst.data<D>());
    });
  });
}

void copy_block(const Tensor& full, std::int64_t row0, std::int64_t col0, Tensor& block) {
  constexpr const char* op = "copy_block";
  check_block(op, full, row0, col0, block);
  QUOPT_ROUTE(op, full, copy_block, full.data<T>(), full.dim(1), row0, col0, block.dim(0), block.dim(1),
              block.data<T>());
}

void add_block(Tensor& full, std::int64_t row0, std::int64_t col0, const Tensor& block, double alpha) {
  constexpr const char* op = "add_block";
  check_block(op, full, row0, col0, block);
  check_finite_scalar(op, "alpha", alpha);
  QUOPT_ROUTE(op, full, add_block, full.data<T>(), full.dim(1), row0, col0, block.dim(0), block.dim(1),
              block.data<T>(), alpha);
}

namespace {
void gather_checked(const char* op, const Tensor& a, const std::vector<std::int64_t>& idx, bool columns,
                    Tensor& out) {
  detail::check_float(op, "a", a);
  detail::check_ndim(op, "a", a, 2);
  detail::check_like(op, "a", a, "out", out);
  detail::check_shape(op, "out", out, a.shape());
  detail::check_no_overlap(op, "out", out, "a", a);
  const std::int64_t n = columns ? a.dim(1) : a.dim(0);
  QUOPT_CHECK(static_cast<std::int64_t>(idx.size()) == n, op, ": ", idx.size(), " indices for the ", n,
              columns ? " columns of " : " rows of ", a.describe());
  for (std::int64_t k : idx) QUOPT_CHECK(k >= 0 && k < n, op, ": index ", k, " outside [0, ", n, ")");
  QUOPT_ROUTE(op, a, gather, a.data<T>(), a.dim(0), a.dim(1), idx.data(), columns, out.data<T>());
}
}  // namespace

void gather_columns(const Tensor& a, const std::vector<std::int64_t>& idx, Tensor& out) {
  gather_checked("gather_columns", a, idx, true, out);
}

void gather_rows(const Tensor& a, const std::vector<std::int64_t>& idx, Tensor& out) {
  gather_checked("gather_rows", a, idx, false, out);
}

std::vector<double> column_dots(const Tensor& a, const Tensor& b) {
  constexpr const char* op = "column_dots";
  detail::check_float(op, "a", a);
  detail::check_ndim(op, "a", a, 2);
  detail::check_like(op, "a", a, "b", b);
  detail::check_shape(op, "b", b, a.shape());
  std::vector<double> d(static_cast<std::size_t>(a.dim(1)));
  QUOPT_ROUTE(op, a, column_dots, a.data<T>(), b.data<T>(), a.dim(0), a.dim(1), d.data());
  return d;
}

int eigh_inplace(Tensor& a, Tensor& w) {
  constexpr const char* op = "eigh_inplace";
  check_square(op, "a", a);
  detail::check_like(op, "a", a, "w", w);
  detail::check_shape(op, "w", w, {a.dim(0)});
  detail::check_no_overlap(op, "w", w, "a", a);
  detail::blas_int(op, a.dim(0));
  return QUOPT_ROUTE(op, a, eigh_inplace, a.data<T>(), a.dim(0), w.data<T>());
}

int qr_inplace(Tensor& a, Tensor& r) {
  constexpr const char* op = "qr_inplace";
  detail::check_float(op, "a", a);
  detail::check_ndim(op, "a", a, 2);
  QUOPT_CHECK(a.dim(0) >= a.dim(1), op, ": a is ", a.describe(), "; the reduced QR needs rows >= columns");
  detail::check_like(op, "a", a, "r", r);
  detail::check_shape(op, "r", r, {a.dim(1), a.dim(1)});
  detail::check_no_overlap(op, "r", r, "a", a);
  detail::blas_int(op, a.dim(0));
  return QUOPT_ROUTE(op, a, qr_inplace, a.data<T>(), a.dim(0), a.dim(1), r.data<T>());
}

}  // namespace quopt::kernels
