#include "quant/gptq.hpp"

#include <lapacke.h>

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.hpp"
#include "kernels/ops.hpp"
#include "kernels/quant_ops.hpp"

namespace quopt {

namespace {

using HostRange = Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace, Kokkos::IndexType<std::int64_t>>;

std::vector<double> to_doubles(const Tensor& t) {
  const Tensor d = t.dtype() == DType::F64 ? t : t.astype(DType::F64);
  const double* p = d.data<double>();
  return std::vector<double>(p, p + d.numel());
}

void check_host_float(const char* what, const Tensor& t) {
  QUOPT_CHECK(t.defined(), "gptq: ", what, " is an undefined tensor");
  QUOPT_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, "gptq: ", what, " is ", t.describe(),
              "; expected f32 or f64");
  QUOPT_CHECK(t.is_host(), "gptq: ", what, " is ", t.describe(),
              "; GPTQ runs on the host (LAPACK), move it with Tensor::to(Device::Host)");
}

// In-place Cholesky of the row-major n x n matrix a (lower or upper triangle), with a message.
void cholesky(char uplo, std::int64_t n, double* a, const char* what) {
  const lapack_int info =
      LAPACKE_dpotrf(LAPACK_ROW_MAJOR, uplo, static_cast<lapack_int>(n), a, static_cast<lapack_int>(n));
  QUOPT_CHECK(
      info == 0, "gptq: the Cholesky factorisation of ", what, " failed (LAPACK dpotrf info = ", info,
      "): the damped Hessian is not positive definite; raise percdamp or use more calibration tokens");
}

}  // namespace

void validate(const GptqOptions& opt) {
  QUOPT_CHECK(opt.bits >= kernels::kRtnMinBits && opt.bits <= kernels::kRtnMaxBits, "gptq: bits = ", opt.bits,
              " is not supported; use ", kernels::kRtnMinBits, "..", kernels::kRtnMaxBits);
  QUOPT_CHECK(opt.group_size >= 0, "gptq: group_size = ", opt.group_size,
              " must be >= 0 (0: one scale per row, g: one scale per g input columns)");
  QUOPT_CHECK(opt.block_size >= 1, "gptq: block_size = ", opt.block_size,
              " must be >= 1 (the reference uses 128 columns per lazy-update block)");
  QUOPT_CHECK(std::isfinite(opt.percdamp) && opt.percdamp >= 0.0, "gptq: percdamp = ", opt.percdamp,
              " must be finite and >= 0 (the reference uses 0.01: 1% of the mean Hessian diagonal)");
}

GptqHessian::GptqHessian(std::int64_t in_features) {
  QUOPT_CHECK(in_features > 0, "GptqHessian: in_features = ", in_features, " must be positive");
  h_ = Tensor::zeros({in_features, in_features}, DType::F64);
}

void GptqHessian::add_batch(const Tensor& x) {
  check_host_float("calibration input x", x);
  const std::int64_t in = h_.dim(0);
  QUOPT_CHECK(x.ndim() >= 1 && x.dim(-1) == in, "GptqHessian::add_batch: x is ", x.describe(),
              "; expected [..., ", in, "] (the layer's in_features)");
  const std::int64_t t = x.numel() / in;
  if (t == 0) return;
  const Tensor xd = (x.dtype() == DType::F64 ? x : x.astype(DType::F64)).reshape({t, in});
  // Running mean as in GPTQ.add_batch: H *= n / (n + t); H += 2 / (n + t) X^T X.
  const double total = static_cast<double>(tokens_ + t);
  kernels::matmul(xd, true, xd, false, h_, 2.0 / total, static_cast<double>(tokens_) / total);
  tokens_ += t;
}

GptqResult gptq_quantize_calibrated(const Tensor& w, const Tensor& x, const GptqOptions& opt) {
  check_host_float("w", w);
  QUOPT_CHECK(w.ndim() == 2, "gptq: w is ", w.describe(), "; expected [out_features, in_features]");
  GptqHessian h(w.dim(1));
  h.add_batch(x);
  return gptq_quantize(w, h.matrix(), opt);
}

GptqResult gptq_quantize(const Tensor& w, const Tensor& h, const GptqOptions& opt) {
  validate(opt);
  check_host_float("w", w);
  check_host_float("h", h);
  QUOPT_CHECK(w.ndim() == 2, "gptq: w is ", w.describe(), "; expected [out_features, in_features]");
  const std::int64_t m = w.dim(0), n = w.dim(1);
  QUOPT_CHECK(h.shape() == (Shape{n, n}), "gptq: h is ", h.describe(), "; expected [", n, ", ", n,
              "] (in_features of w ", w.describe(), ")");
  QUOPT_CHECK(opt.group_size == 0 || n % opt.group_size == 0, "gptq: group_size = ", opt.group_size,
              " does not divide in_features = ", n, " of w ", w.describe(),
              "; choose a divisor or 0 for one scale per row");
  const std::int64_t g = opt.group_size;
  if (m == 0 || n == 0) {
    GptqResult empty;
    empty.weight = w.clone();
    empty.scales = Tensor::zeros(g > 0 ? Shape{m, n / g} : Shape{m}, w.dtype());
    return empty;
  }
  const std::int64_t n_groups = g > 0 ? n / g : 1;
  const int bits = opt.bits;
  const int max_code = kernels::rtn_max_code(bits);

  std::vector<double> wv = to_doubles(w);  // [m, n]
  std::vector<double> hv = to_doubles(h);  // [n, n]

  // Per-row scales come from the full rows before anything else (fasterquant calls find_params(W)
  // before zeroing dead columns); per-group scales are computed when each group starts (below).
  std::vector<double> scale(static_cast<std::size_t>(m * n_groups), 1.0);
  std::vector<double> cur_scale(static_cast<std::size_t>(m), 1.0);  // scale in use for each row
  if (g == 0) {
    for (std::int64_t r = 0; r < m; ++r) {
      double amax = 0.0;
      for (std::int64_t j = 0; j < n; ++j)
        amax = std::max(amax, std::fabs(wv[static_cast<std::size_t>(r * n + j)]));
      cur_scale[static_cast<std::size_t>(r)] = scale[static_cast<std::size_t>(r)] =
          kernels::rtn_scale(amax, bits);
    }
  }

  // Dead inputs (H_jj == 0: the input is always zero): H_jj = 1 and W[:, j] = 0, as the reference.
  for (std::int64_t j = 0; j < n; ++j) {
    if (hv[static_cast<std::size_t>(j * n + j)] == 0.0) {
      hv[static_cast<std::size_t>(j * n + j)] = 1.0;
      for (std::int64_t r = 0; r < m; ++r) wv[static_cast<std::size_t>(r * n + j)] = 0.0;
    }
  }

  // Activation order: columns by decreasing H_jj (ties keep the original order: a stable sort).
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), std::int64_t{0});
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) {
      return hv[static_cast<std::size_t>(a * n + a)] > hv[static_cast<std::size_t>(b * n + b)];
    });
  }

  // U: the upper Cholesky factor of (P H P^T + damp I)^-1, via Cholesky, potri, Cholesky.
  std::vector<double> u(static_cast<std::size_t>(n * n));
  double mean_diag = 0.0;
  for (std::int64_t a = 0; a < n; ++a) {
    const std::int64_t pa = perm[static_cast<std::size_t>(a)];
    for (std::int64_t b = 0; b < n; ++b)
      u[static_cast<std::size_t>(a * n + b)] =
          hv[static_cast<std::size_t>(pa * n + perm[static_cast<std::size_t>(b)])];
    mean_diag += u[static_cast<std::size_t>(a * n + a)];
  }
  mean_diag /= static_cast<double>(n);
  const double damp = opt.percdamp * mean_diag;
  for (std::int64_t a = 0; a < n; ++a) u[static_cast<std::size_t>(a * n + a)] += damp;
  cholesky('L', n, u.data(), "H + damp I");
  const lapack_int info =
      LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', static_cast<lapack_int>(n), u.data(), static_cast<lapack_int>(n));
  QUOPT_CHECK(info == 0, "gptq: inverting the damped Hessian failed (LAPACK dpotri info = ", info,
              "); raise percdamp or use more calibration tokens");
  for (std::int64_t a = 0; a < n; ++a)
    for (std::int64_t b = a + 1; b < n; ++b)
      u[static_cast<std::size_t>(a * n + b)] = u[static_cast<std::size_t>(b * n + a)];
  cholesky('U', n, u.data(), "H^-1");
  for (std::int64_t a = 0; a < n; ++a)
    for (std::int64_t b = 0; b < a; ++b) u[static_cast<std::size_t>(a * n + b)] = 0.0;

  // W^T in processing order, [n, m]: the column blocks of W are then contiguous row blocks, and the
  // lazy update of the remaining columns is one GEMM on a contiguous tail.
  Tensor wt = Tensor::empty({n, m}, DType::F64);
  double* wtp = wt.data<double>();
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t src = perm[static_cast<std::size_t>(k)];
    for (std::int64_t r = 0; r < m; ++r) wtp[k * m + r] = wv[static_cast<std::size_t>(r * n + src)];
  }
  std::vector<double> qt(static_cast<std::size_t>(n * m));  // Q^T in processing order
  std::vector<double> row_loss(static_cast<std::size_t>(m), 0.0);

  const std::int64_t bs = opt.block_size;
  std::vector<double> work(static_cast<std::size_t>(m * std::min(bs, n)));
  for (std::int64_t i1 = 0; i1 < n; i1 += bs) {
    const std::int64_t i2 = std::min(i1 + bs, n), count = i2 - i1;
    Tensor et = Tensor::empty({count, m}, DType::F64);  // scaled errors (w - q) / U_jj, one row per column
    double* etp = et.data<double>();
    const double* up = u.data();
    double* qtp = qt.data();
    double* workp = work.data();
    double* scalep = scale.data();
    double* curp = cur_scale.data();
    double* lossp = row_loss.data();
    // Rows of W are independent inside a block: one task per row, its block columns in a private buffer.
    Kokkos::parallel_for("quopt::gptq_block", HostRange(0, m), [=](const std::int64_t r) {
      double* w1 = workp + r * count;
      for (std::int64_t k = 0; k < count; ++k) w1[k] = wtp[(i1 + k) * m + r];
      double loss = 0.0;
      for (std::int64_t i = 0; i < count; ++i) {
        const std::int64_t col = i1 + i;
        if (g > 0 && col % g == 0) {
          // As fasterquant: find_params(W[:, col:col+g]) on the W whose later columns have received
          // the lazy updates of the finished blocks only (not those of this block's earlier columns).
          double amax = 0.0;
          for (std::int64_t k = col; k < col + g; ++k) amax = std::max(amax, std::fabs(wtp[k * m + r]));
          curp[r] = kernels::rtn_scale(amax, bits);
          scalep[r * n_groups + col / g] = curp[r];
        }
        const double wv1 = w1[i];
        const double q = kernels::rtn_dequantize(wv1, curp[r], max_code);
        qtp[col * m + r] = q;
        const double d = up[col * n + col];
        const double e = (wv1 - q) / d;
        loss += 0.5 * e * e;
        const double* urow = up + col * n + i1;
        for (std::int64_t j = i + 1; j < count; ++j) w1[j] -= e * urow[j];
        etp[i * m + r] = e;
      }
      lossp[r] += loss;
    });
    if (i2 < n) {
      // Lazy batch update: W[:, i2:] -= E U[i1:i2, i2:], i.e. W^T[i2:, :] -= U[i1:i2, i2:]^T E^T.
      Tensor ublk = Tensor::empty({count, n - i2}, DType::F64);
      double* ub = ublk.data<double>();
      for (std::int64_t k = 0; k < count; ++k)
        std::copy(up + (i1 + k) * n + i2, up + (i1 + k) * n + n, ub + k * (n - i2));
      Tensor tail = wt.slice(i2, n);
      kernels::matmul(ublk, true, et, false, tail, -1.0, 1.0);
    }
  }

  GptqResult res;
  std::vector<double> out(static_cast<std::size_t>(m * n));
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t dst = perm[static_cast<std::size_t>(k)];
    for (std::int64_t r = 0; r < m; ++r)
      out[static_cast<std::size_t>(r * n + dst)] = qt[static_cast<std::size_t>(k * m + r)];
  }
  Tensor out64 = Tensor::empty({m, n}, DType::F64);
  std::copy(out.begin(), out.end(), out64.data<double>());
  Tensor sc64 = g > 0 ? Tensor::empty({m, n_groups}, DType::F64) : Tensor::empty({m}, DType::F64);
  std::copy(scale.begin(), scale.end(), sc64.data<double>());
  res.weight = w.dtype() == DType::F64 ? out64 : out64.astype(w.dtype());
  res.scales = w.dtype() == DType::F64 ? sc64 : sc64.astype(w.dtype());
  for (double l : row_loss) res.loss += l;
  return res;
}

}  // namespace quopt
