// matmul / matmul_batched: checks, routing to host (OpenBLAS) or CUDA (cuBLAS), and GEMM statistics.
#include <cmath>
#include <map>
#include <string>

#include "core/timer.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/host/gemm.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm.hpp"
#endif

namespace quopt::kernels {

namespace {

// GEMM statistics: updated by the (single) thread that calls the kernels.
bool g_stats_on = false;
GemmStats g_stats;
std::map<GemmShape, std::int64_t> g_shapes;

struct GemmDims {
  std::int64_t m = 0, n = 0, k = 0;
};

// Shapes of op(a) [m, k], op(b) [k, n] and c [m, n] from the last two dimensions of each tensor.
GemmDims gemm_dims(const char* op, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                   const Tensor& c) {
  const int nd = c.ndim();
  const std::int64_t ar = a.dim(nd - 2), ac = a.dim(nd - 1);
  const std::int64_t br = b.dim(nd - 2), bc = b.dim(nd - 1);
  GemmDims d;
  d.m = trans_a ? ac : ar;
  d.k = trans_a ? ar : ac;
  d.n = trans_b ? br : bc;
  const std::int64_t kb = trans_b ? bc : br;
  QUOPT_CHECK(kb == d.k, op, ": inner dimensions differ: op(a) of a ", a.describe(),
              (trans_a ? " (transposed)" : ""), " has ", d.k, " columns but op(b) of b ", b.describe(),
              (trans_b ? " (transposed)" : ""), " has ", kb, " rows");
  QUOPT_CHECK(c.dim(nd - 2) == d.m && c.dim(nd - 1) == d.n, op, ": output c is ", c.describe(),
              "; expected [", (nd == 3 ? cat(c.dim(0), ", ") : std::string()), d.m, ", ", d.n, "] from a ",
              a.describe(), (trans_a ? "^T" : ""), " and b ", b.describe(), (trans_b ? "^T" : ""));
  for (std::int64_t v : {d.m, d.n, d.k}) detail::blas_int(op, v);
  return d;
}

void check_gemm_args(const char* op, int ndim, const Tensor& a, const Tensor& b, const Tensor& c,
                     double alpha, double beta) {
  detail::check_float(op, "a", a);
  detail::check_like(op, "a", a, "b", b);
  detail::check_like(op, "a", a, "c", c);
  detail::check_ndim(op, "a", a, ndim);
  detail::check_ndim(op, "b", b, ndim);
  detail::check_ndim(op, "c", c, ndim);
  detail::check_no_overlap(op, "c", c, "a", a);
  detail::check_no_overlap(op, "c", c, "b", b);
  QUOPT_CHECK(std::isfinite(alpha) && std::isfinite(beta), op, ": alpha = ", alpha, " and beta = ", beta,
              " must be finite");
}

void record(double flops, double t0, [[maybe_unused]] detail::Backend backend, const GemmShape& shape) {
#ifdef QUOPT_HAVE_CUDA
  if (backend == detail::Backend::Cuda) cuda::synchronize();
#endif
  ++g_shapes[shape];
  g_stats.flops += flops;
  g_stats.seconds += wall_seconds() - t0;
  g_stats.calls += 1;
}

}  // namespace

void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha,
            double beta) {
  constexpr const char* op = "matmul";
  check_gemm_args(op, 2, a, b, c, alpha, beta);
  const GemmDims d = gemm_dims(op, a, trans_a, b, trans_b, c);
  const auto backend = detail::route(op, a);
  const double t0 = g_stats_on ? wall_seconds() : 0.0;
  detail::with_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = c.data<T>();
    if (backend == detail::Backend::Host) {
      host::gemm(trans_a, trans_b, d.m, d.n, d.k, alpha, pa, a.dim(1), pb, b.dim(1), beta, pc, c.dim(1));
    } else {
#ifdef QUOPT_HAVE_CUDA
      cuda::gemm(trans_a, trans_b, d.m, d.n, d.k, alpha, pa, a.dim(1), pb, b.dim(1), beta, pc, c.dim(1));
#endif
    }
  });
  if (g_stats_on)
    record(2.0 * static_cast<double>(d.m) * static_cast<double>(d.n) * static_cast<double>(d.k), t0, backend,
           GemmShape{d.m, d.n, d.k, 1, trans_a, trans_b});
}

void matmul_batched(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha,
                    double beta) {
  constexpr const char* op = "matmul_batched";
  check_gemm_args(op, 3, a, b, c, alpha, beta);
  QUOPT_CHECK(a.dim(0) == c.dim(0) && b.dim(0) == c.dim(0), op, ": batch sizes differ: a ", a.describe(),
              ", b ", b.describe(), ", c ", c.describe(), "; all three need the same first dimension");
  const GemmDims d = gemm_dims(op, a, trans_a, b, trans_b, c);
  const std::int64_t batch = c.dim(0);
  const std::int64_t sa = a.dim(1) * a.dim(2), sb = b.dim(1) * b.dim(2), sc = c.dim(1) * c.dim(2);
  const auto backend = detail::route(op, a);
  const double t0 = g_stats_on ? wall_seconds() : 0.0;
  detail::with_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = c.data<T>();
    if (backend == detail::Backend::Host) {
      host::gemm_batched(trans_a, trans_b, batch, d.m, d.n, d.k, alpha, pa, a.dim(2), sa, pb, b.dim(2), sb,
                         beta, pc, c.dim(2), sc);
    } else {
#ifdef QUOPT_HAVE_CUDA
      cuda::gemm_batched(trans_a, trans_b, batch, d.m, d.n, d.k, alpha, pa, a.dim(2), sa, pb, b.dim(2), sb,
                         beta, pc, c.dim(2), sc);
#endif
    }
  });
  if (g_stats_on) {
    record(2.0 * static_cast<double>(batch) * static_cast<double>(d.m) * static_cast<double>(d.n) *
               static_cast<double>(d.k),
           t0, backend, GemmShape{d.m, d.n, d.k, batch, trans_a, trans_b});
  }
}

void gemm_stats_enable(bool on) {
  g_stats_on = on;
}
GemmStats gemm_stats() {
  return g_stats;
}
void gemm_stats_reset() {
  g_stats = GemmStats{};
  g_shapes.clear();
}
std::vector<std::pair<GemmShape, std::int64_t>> gemm_shape_counts() {
  return {g_shapes.begin(), g_shapes.end()};
}

}  // namespace quopt::kernels
