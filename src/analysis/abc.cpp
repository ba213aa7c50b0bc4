#include "analysis/abc.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace quopt {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Elements summed into a local partial before it is added to the running total: blocked summation
// keeps the rounding error of an n-element sum near (n / kBlock + kBlock) eps instead of n eps.
constexpr std::int64_t kBlock = 1024;

Tensor on_host(const Tensor& x, const char* what) {
  QUOPT_CHECK(x.defined(), what, ": the tensor is undefined");
  QUOPT_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, what, " takes f32 or f64 tensors, got ",
              x.describe());
  return x.is_host() ? x : x.to(Device::Host);
}

template <class T>
void abc_sums_typed(const T* fq_hq, const T* fq_h, const T* f_hq, const T* f_h, std::int64_t n, AbcSums& s) {
  for (std::int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const std::int64_t i1 = std::min(n, i0 + kBlock);
    double h2 = 0.0, dh2 = 0.0, a2 = 0.0, b2 = 0.0, ab = 0.0;
    for (std::int64_t i = i0; i < i1; ++i) {
      const double qq = fq_hq[i], qh = fq_h[i], fq = f_hq[i], fh = f_h[i];
      const double a = 0.5 * ((qq - qh) + (fq - fh));
      const double b = 0.5 * ((qq - fq) + (qh - fh));
      const double d = qq - fh;
      h2 += fh * fh;
      dh2 += d * d;
      a2 += a * a;
      b2 += b * b;
      ab += a * b;
    }
    s.h2 += h2;
    s.dh2 += dh2;
    s.a2 += a2;
    s.b2 += b2;
    s.ab += ab;
  }
}

template <class T>
void relerr_typed(const T* xq, const T* x, std::int64_t n, RelErrSums& s) {
  for (std::int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const std::int64_t i1 = std::min(n, i0 + kBlock);
    double d2 = 0.0, r2 = 0.0;
    for (std::int64_t i = i0; i < i1; ++i) {
      const double r = x[i], d = static_cast<double>(xq[i]) - r;
      d2 += d * d;
      r2 += r * r;
    }
    s.diff2 += d2;
    s.ref2 += r2;
  }
}

}  // namespace

void AbcSums::merge(const AbcSums& o) {
  h2 += o.h2;
  dh2 += o.dh2;
  a2 += o.a2;
  b2 += o.b2;
  ab += o.ab;
  input.merge(o.input);
}

void abc_accumulate(const Tensor& fq_hq_in, const Tensor& fq_h_in, const Tensor& f_hq_in,
                    const Tensor& f_h_in, AbcSums& s) {
  Tensor t[4] = {on_host(fq_hq_in, "ABC fq(hq)"), on_host(fq_h_in, "ABC fq(h)"),
                 on_host(f_hq_in, "ABC f(hq)"), on_host(f_h_in, "ABC f(h)")};
  const std::int64_t n = t[3].numel();
  for (const auto& x : t)
    QUOPT_CHECK(x.numel() == n, "ABC: the four evaluations of a module differ in size: fq(hq) ",
                t[0].describe(), ", fq(h) ", t[1].describe(), ", f(hq) ", t[2].describe(), ", f(h) ",
                t[3].describe());
  const bool same = std::all_of(t, t + 4, [&](const Tensor& x) { return x.dtype() == t[0].dtype(); });
  if (!same)
    for (auto& x : t) x = x.astype(DType::F64);
  if (t[0].dtype() == DType::F32)
    abc_sums_typed(t[0].data<float>(), t[1].data<float>(), t[2].data<float>(), t[3].data<float>(), n, s);
  else
    abc_sums_typed(t[0].data<double>(), t[1].data<double>(), t[2].data<double>(), t[3].data<double>(), n, s);
}

double RelErrSums::value() const {
  if (ref2 > 0.0) return diff2 / ref2;
  return diff2 == 0.0 ? 0.0 : kNaN;
}

void RelErrSums::merge(const RelErrSums& o) {
  diff2 += o.diff2;
  ref2 += o.ref2;
}

void relerr_accumulate(const Tensor& xq_in, const Tensor& x_in, RelErrSums& s) {
  Tensor xq = on_host(xq_in, "relative error (quantized)"), x = on_host(x_in, "relative error (reference)");
  QUOPT_CHECK(xq.numel() == x.numel(), "relative error: ", xq.describe(), " and ", x.describe(),
              " differ in size");
  if (xq.dtype() != x.dtype()) {
    xq = xq.astype(DType::F64);
    x = x.astype(DType::F64);
  }
  if (x.dtype() == DType::F32)
    relerr_typed(xq.data<float>(), x.data<float>(), x.numel(), s);
  else
    relerr_typed(xq.data<double>(), x.data<double>(), x.numel(), s);
}

AbcTerms abc_terms(const AbcSums& s, double R_in) {
  AbcTerms t;
  t.G1 = t.G2 = kNaN;
  if (s.h2 > 0.0) {
    t.R = s.dh2 / s.h2;
    t.A = s.a2 / s.h2;
    t.B = s.b2 / s.h2;
    t.C = 2.0 * s.ab / s.h2;
  } else if (s.dh2 != 0.0 || s.a2 != 0.0 || s.b2 != 0.0) {
    t.R = t.A = t.B = t.C = kNaN;  // an error relative to a zero output
  }
  t.G = (R_in > 0.0 && std::isfinite(R_in)) ? t.A / R_in : kNaN;
  return t;
}

void set_spectral_ratio(AbcTerms& t, double G1) {
  t.G1 = G1;
  t.G2 = t.G / G1;
}

// ---- chain ------------------------------------------------------------------------------------------------

void abc_chain_accumulate(const std::vector<AbcModule>& chain, const Tensor& input,
                          std::vector<AbcSums>& sums, const AbcHooks& hooks) {
  if (sums.empty()) sums.resize(chain.size());
  QUOPT_CHECK(sums.size() == chain.size(), "ABC: ", sums.size(), " accumulators for a chain of ",
              chain.size(), " modules");
  Tensor h = input, hq = input;
  for (std::size_t l = 0; l < chain.size(); ++l) {
    const auto m = static_cast<std::int64_t>(l);
    auto eval = [&](AbcEval which, const ModuleFn& fn, const Tensor& x) {
      if (hooks.before_eval) hooks.before_eval(m, which);
      QUOPT_CHECK(fn, "ABC: module ", l, " (", chain[l].name, ") has no ",
                  which == AbcEval::F_h || which == AbcEval::F_hq ? "full-precision" : "quantized",
                  " function");
      return fn(x);
    };
    if (h.dtype() == DType::F32 || h.dtype() == DType::F64) relerr_accumulate(hq, h, sums[l].input);
    Tensor f_h = eval(AbcEval::F_h, chain[l].f, h);
    Tensor fq_hq = eval(AbcEval::Fq_hq, chain[l].fq, hq);
    Tensor f_hq = eval(AbcEval::F_hq, chain[l].f, hq);
    Tensor fq_h = eval(AbcEval::Fq_h, chain[l].fq, h);
    const ModuleFn& value = chain[l].value;
    if (value)
      abc_accumulate(value(fq_hq), value(fq_h), value(f_hq), value(f_h), sums[l]);
    else
      abc_accumulate(fq_hq, fq_h, f_hq, f_h, sums[l]);
    if (hooks.after_module) hooks.after_module(m);
    h = std::move(f_h);
    hq = std::move(fq_hq);
  }
}

std::vector<AbcTerms> abc_chain_terms(const std::vector<AbcSums>& sums) {
  std::vector<AbcTerms> out;
  out.reserve(sums.size());
  for (std::size_t l = 0; l < sums.size(); ++l)  // the first module's input is the same in both networks
    out.push_back(abc_terms(sums[l], l == 0 ? kNaN : sums[l].input.value()));
  return out;
}

std::vector<AbcTerms> abc_chain(const std::vector<AbcModule>& chain, const Tensor& input) {
  std::vector<AbcSums> sums;
  abc_chain_accumulate(chain, input, sums);
  return abc_chain_terms(sums);
}

// ---- spectral norms ---------------------------------------------------------------------------------------

namespace {

// Gram matrix of the m x n row-major fp64 matrix a, of its smaller side (A^T A or A A^T): k x k with
// k = min(m, n), upper triangle only (cblas_dsyrk).
Tensor gram(const std::vector<double>& a, std::int64_t m, std::int64_t n) {
  const std::int64_t k = std::min(m, n);
  Tensor g = Tensor::zeros({k, k}, DType::F64);
  if (k == 0) return g;
  const auto ki = static_cast<blasint>(k);
  cblas_dsyrk(CblasRowMajor, CblasUpper, m >= n ? CblasTrans : CblasNoTrans, ki,
              static_cast<blasint>(m >= n ? m : n), 1.0, a.data(), static_cast<blasint>(n), 0.0,
              g.data<double>(), ki);
  return g;
}

double dot(const double* x, const double* y, std::int64_t n) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

// Largest eigenvalue of the j x j symmetric tridiagonal matrix (diagonal d, off-diagonal e) and the last
// component of its unit eigenvector (LAPACKE_dstevr, MRRR).
std::pair<double, double> top_ritz(const std::vector<double>& d, const std::vector<double>& e) {
  const auto j = static_cast<lapack_int>(d.size());
  std::vector<double> dd = d, ee(e.begin(), e.end()), z(static_cast<std::size_t>(j));
  ee.resize(static_cast<std::size_t>(std::max<lapack_int>(j, 1)), 0.0);
  lapack_int found = 0;
  double w = 0.0;
  std::vector<lapack_int> isuppz(2);
  // abstol = the safe minimum: LAPACK's documented choice for the most accurate eigenvalues (dstevr).
  const lapack_int info = LAPACKE_dstevr(LAPACK_COL_MAJOR, 'V', 'I', j, dd.data(), ee.data(), 0.0, 0.0, j, j,
                                         LAPACKE_dlamch('S'), &found, &w, z.data(), j, isuppz.data());
  QUOPT_CHECK(info == 0 && found == 1, "spectral norm: LAPACKE_dstevr failed on the ", j, " x ", j,
              " Lanczos matrix (info ", info, "); does the weight contain NaN or Inf?");
  return {w, z[static_cast<std::size_t>(j - 1)]};
}

std::vector<double> to_doubles(const Tensor& w_in, const char* what) {
  const Tensor w = on_host(w_in, what);
  QUOPT_CHECK(w.ndim() == 2, what, " takes a 2-D weight [out, in], got ", w.describe());
  std::vector<double> v(static_cast<std::size_t>(w.numel()));
  if (w.dtype() == DType::F32)
    std::copy(w.data<float>(), w.data<float>() + w.numel(), v.begin());
  else
    std::copy(w.data<double>(), w.data<double>() + w.numel(), v.begin());
  return v;
}

}  // namespace

TopEigen top_eigenvalue_psd(const Tensor& g_in, double tol) {
  const Tensor g = on_host(g_in, "top_eigenvalue_psd");
  QUOPT_CHECK(g.dtype() == DType::F64 && g.ndim() == 2 && g.dim(0) == g.dim(1),
              "top_eigenvalue_psd takes a square f64 matrix, got ", g.describe());
  QUOPT_CHECK(tol > 0.0 && tol < 1.0, "top_eigenvalue_psd: tolerance ", tol, " must be in (0, 1)");
  const std::int64_t k = g.dim(0);
  TopEigen out;
  if (k == 0) return out;
  const auto ki = static_cast<blasint>(k);
  const auto ku = static_cast<std::size_t>(k);
  // Lanczos basis, one row per vector. Start: a fixed pseudo-random unit vector (the same on every
  // rank and run), which has a nonzero component along the top eigenvector with probability 1.
  std::vector<double> Q, w(ku), c;
  std::vector<double> q(ku);
  Rng rng(0x51ec7a1, static_cast<std::uint64_t>(k));  // any fixed seed: results reproducible across runs
  for (auto& v : q) v = rng.normal();
  const double qn = std::sqrt(dot(q.data(), q.data(), k));
  for (auto& v : q) v /= qn;
  std::vector<double> alpha, beta;
  for (std::int64_t j = 0; j < k; ++j) {
    Q.insert(Q.end(), q.begin(), q.end());
    cblas_dsymv(CblasRowMajor, CblasUpper, ki, 1.0, g.data<double>(), ki, q.data(), 1, 0.0, w.data(), 1);
    alpha.push_back(dot(q.data(), w.data(), k));
    // Full reorthogonalization against the whole basis, two classical Gram-Schmidt passes ("twice is
    // enough", Giraud, Langou & Rozloznik 2005); it also removes the alpha and beta components.
    const auto rows = static_cast<blasint>(j + 1);
    c.assign(static_cast<std::size_t>(j + 1), 0.0);
    for (int pass = 0; pass < 2; ++pass) {
      cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, ki, 1.0, Q.data(), ki, w.data(), 1, 0.0, c.data(), 1);
      cblas_dgemv(CblasRowMajor, CblasTrans, rows, ki, -1.0, Q.data(), ki, c.data(), 1, 1.0, w.data(), 1);
    }
    const double b = std::sqrt(dot(w.data(), w.data(), k));
    const auto [theta, s_last] = top_ritz(alpha, beta);
    out.value = std::max(theta, 0.0);
    out.iterations = j + 1;
    // |G y - theta y| = b |s_last| for the Ritz vector y: a bound on the eigenvalue's error.
    out.residual = b * std::fabs(s_last);
    if (out.residual <= tol * out.value || b == 0.0) break;
    beta.push_back(b);
    for (std::size_t i = 0; i < ku; ++i) q[i] = w[i] / b;
  }
  return out;
}

double spectral_norm_sq(const Tensor& w) {
  const auto v = to_doubles(w, "spectral_norm_sq");
  return top_eigenvalue_psd(gram(v, w.dim(0), w.dim(1))).value;
}

double spectral_ratio(const Tensor& w, const Tensor& wq) {
  QUOPT_CHECK(w.defined() && wq.defined() && w.shape() == wq.shape(), "spectral_ratio: W ", w.describe(),
              " and Wq ", wq.describe(), " must have the same shape");
  const auto a = to_doubles(w, "spectral_ratio (W)");
  auto mid = to_doubles(wq, "spectral_ratio (Wq)");
  if (mid == a) return 1.0;  // eps_W = 0: exactly 1 (and no second eigenvalue problem)
  for (std::size_t i = 0; i < mid.size(); ++i) mid[i] = 0.5 * (a[i] + mid[i]);  // W + eps_W / 2
  const double den = top_eigenvalue_psd(gram(a, w.dim(0), w.dim(1))).value;
  if (!(den > 0.0)) return kNaN;
  return top_eigenvalue_psd(gram(mid, w.dim(0), w.dim(1))).value / den;
}

}  // namespace quopt
