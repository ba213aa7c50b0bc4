#include "optim/matrix_functions_device.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "kernels/ops.hpp"
#include "kernels/optim_ops.hpp"

namespace quopt::device_matrix {

namespace {

constexpr int kNonFinite = -1000;  // the info optim/matrix_functions.cpp reports for non-finite values

template <class F>
decltype(auto) with_dtype(DType dt, F&& f) {
  if (dt == DType::F64) return f(double{});
  return f(float{});
}

Tensor like(const Shape& s, DType dt, const Tensor& ref) {
  return Tensor::empty(s, dt, ref.device());
}

// One eigendecomposition of a in dtype dt (a converted when it has the other one).
int eigh_attempt(const Tensor& a, DType dt, Tensor& w, Tensor& q) {
  const std::int64_t n = a.dim(0);
  q = like(a.shape(), dt, a);
  if (dt == a.dtype())
    q.copy_from(a);
  else
    kernels::convert(a, q);
  w = like({n}, dt, a);
  if (!all_finite_device(q)) return kNonFinite;
  const int info = kernels::eigh_inplace(q, w);
  if (info != 0) return info;
  return all_finite_device(q) && all_finite_device(w) ? 0 : kNonFinite;
}

Tensor converted(const Tensor& t, DType dt) {
  if (t.dtype() == dt) return t;
  Tensor out = like(t.shape(), dt, t);
  kernels::convert(t, out);
  return out;
}

}  // namespace

// Non-finite values make the fp64 sum of squares non-finite (finite f32/f64 entries below 1e154 cannot
// overflow it).
bool all_finite_device(const Tensor& t) {
  return std::isfinite(kernels::sum_squares(t));
}

EighResult eigh_device(const Tensor& a, bool retry_fp64) {
  EighResult res;
  Tensor w, q;
  res.info = eigh_attempt(a, a.dtype(), w, q);
  if (res.info != 0 && retry_fp64 && a.dtype() == DType::F32) {
    res.info = eigh_attempt(a, DType::F64, w, q);
    if (res.info == 0) {
      w = converted(w, DType::F32);
      q = converted(q, DType::F32);
      // The f32 conversion of a huge fp64 eigenvalue may overflow.
      if (!all_finite_device(w) || !all_finite_device(q)) res.info = kNonFinite;
      res.used_fp64 = res.info == 0;
    }
  }
  res.ok = res.info == 0;
  if (res.ok) {
    res.eigenvalues = w;
    res.eigenvectors = q;
  }
  return res;
}

QrResult qr_device(const Tensor& a) {
  QrResult res;
  const std::int64_t n = a.dim(1);
  res.q = a.clone();
  res.r = like({n, n}, a.dtype(), a);
  res.info = kernels::qr_inplace(res.q, res.r);
  if (res.info != 0) return res;
  res.ok = all_finite_device(res.q);
  if (!res.ok) res.info = kNonFinite;
  return res;
}

RootResult inverse_root_eigen_device(const Tensor& a, double p, double epsilon, bool retry_fp64) {
  RootResult res;
  const std::int64_t n = a.dim(0);
  // A_ridge = A + eps I in the input precision (the reference perturbs before the eigendecomposition).
  Tensor ridge = a.clone();
  kernels::add_diagonal(ridge, epsilon);
  EighResult e = eigh_device(ridge, retry_fp64);
  if (!e.ok) {
    res.message = cat("eigendecomposition failed (cuSOLVER info ", e.info,
                      e.info == kNonFinite ? ", non-finite values" : "", ")");
    return res;
  }
  res.used_fp64 = e.used_fp64;
  // The n eigenvalues on the host: the shift and the powers exactly as the host path computes them.
  const Tensor lh = e.eigenvalues.to(Device::Host);
  Tensor scales = Tensor::empty({n}, a.dtype());
  with_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> L(lh.data<T>(), lh.data<T>() + n);
    if (n > 0) {
      const T lambda_min = *std::min_element(L.begin(), L.end());
      if (lambda_min < static_cast<T>(epsilon)) {
        for (auto& l : L) l = l - lambda_min;
        for (auto& l : L) l = l + static_cast<T>(epsilon);
      }
    }
    for (std::int64_t j = 0; j < n; ++j)
      scales.data<T>()[j] =
          static_cast<T>(std::pow(static_cast<double>(L[static_cast<std::size_t>(j)]), -1.0 / p));
  });
  Tensor scaled = e.eigenvectors.clone();
  kernels::scale_columns(scaled, scales.to(a.device()));
  res.root = like({n, n}, a.dtype(), a);
  kernels::matmul(scaled, false, e.eigenvectors, true, res.root);  // Q diag(L^(-1/p)) Q^T
  if (!all_finite_device(res.root)) {
    res.root = Tensor();
    res.message = "the inverse root has non-finite values (eigenvalues too small for the epsilon?)";
    return res;
  }
  res.ok = true;
  return res;
}

RootResult inverse_root_newton_device(const Tensor& a, int p, double epsilon, int max_iterations,
                                      double tolerance) {
  RootResult res;
  const std::int64_t n = a.dim(0);
  Tensor ridge = a.clone();
  kernels::add_diagonal(ridge, epsilon);
  const double ss = kernels::sum_squares(ridge);
  if (!std::isfinite(ss)) {
    res.message = "the matrix has non-finite values";
    return res;
  }
  const double fro = std::sqrt(ss);
  if (!(fro > 0.0)) {
    res.message = "the matrix A + eps I is zero";
    return res;
  }
  // The scalars in the input precision, as the host path; the matrices stay on the device.
  double alpha = 0.0, z = 0.0, x0 = 0.0, one_minus_alpha = 0.0;
  with_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T at = static_cast<T>(-1.0 / p), zt = static_cast<T>((p + 1) / (2.0 * fro));
    alpha = at;
    z = zt;
    x0 = static_cast<T>(std::pow(static_cast<double>(zt), 1.0 / p));
    one_minus_alpha = T(1) - at;
  });
  const DType dt = a.dtype();
  Tensor X = Tensor::zeros({n, n}, dt, a.device());
  kernels::add_diagonal(X, x0);
  Tensor M = ridge.clone();
  kernels::scale(M, z);
  Tensor tmp = like({n, n}, dt, a);
  double error = kernels::max_abs_minus_identity(M);
  int it = 0;
  while (error > tolerance && it < max_iterations) {
    ++it;
    Tensor Mp = M.clone();  // M' = alpha M + (1 - alpha) I
    kernels::scale(Mp, alpha);
    kernels::add_diagonal(Mp, one_minus_alpha);
    kernels::matmul(X, false, Mp, false, tmp);
    std::swap(X, tmp);
    // M = M'^p M by binary powering.
    Tensor acc, base = Mp;
    for (int e = p; e > 0; e >>= 1) {
      if (e & 1) {
        if (!acc.defined()) {
          acc = base.clone();
        } else {
          kernels::matmul(acc, false, base, false, tmp);
          std::swap(acc, tmp);
        }
      }
      if (e > 1) {
        Tensor sq = like({n, n}, dt, a);
        kernels::matmul(base, false, base, false, sq);
        base = sq;
      }
    }
    kernels::matmul(acc, false, M, false, tmp);
    std::swap(M, tmp);
    error = kernels::max_abs_minus_identity(M);
    if (!std::isfinite(error)) break;
  }
  res.iterations = it;
  res.error = error;
  res.converged = error <= tolerance;
  if (!all_finite_device(X)) {
    res.message = cat("coupled Newton iteration diverged (non-finite values after ", it, " iterations)");
    return res;
  }
  res.root = X;
  res.ok = true;
  return res;
}

}  // namespace quopt::device_matrix
