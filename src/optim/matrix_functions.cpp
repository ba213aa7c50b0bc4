#include "optim/matrix_functions.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/blas_errors.hpp"
#include "core/error.hpp"
#include "optim/matrix_functions_device.hpp"

namespace quopt {

namespace {

int g_fail_next_f32_eigh = 0;

constexpr int kNonFinite = -1000;  // info reported for non-finite input or output
constexpr int kInjected = -2000;   // info reported by the test hook

void check_float(const char* op, const Tensor& t) {
  QUOPT_CHECK(t.defined() && t.is_host(), op, ": expected a host tensor, got ",
              t.defined() ? t.describe() : std::string("an undefined tensor"));
  QUOPT_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, op, ": expected f32 or f64, got ",
              t.describe());
}

void check_square(const char* op, const Tensor& t) {
  check_float(op, t);
  QUOPT_CHECK(t.ndim() == 2 && t.dim(0) == t.dim(1), op, ": expected a square matrix, got ", t.describe());
}

// LAPACK factorizations run single-threaded: OpenBLAS's threaded syevd/geqrf give results that depend
// on the thread count, so with threads the optimizer's numbers would depend on how many ranks share a
// node. Per-block work is parallel across ranks instead (optim/sharding.hpp).
class SingleThreadedLapack {
 public:
  SingleThreadedLapack() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~SingleThreadedLapack() { openblas_set_num_threads(saved_); }
  SingleThreadedLapack(const SingleThreadedLapack&) = delete;
  SingleThreadedLapack& operator=(const SingleThreadedLapack&) = delete;

 private:
  int saved_;
};

// ---- BLAS/LAPACK overloads ----------------------------------------------------------------------
void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
          int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
          int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}
lapack_int syevd_work(lapack_int n, float* a, float* w, float* work, lapack_int lwork, lapack_int* iwork,
                      lapack_int liwork) {
  return LAPACKE_ssyevd_work(LAPACK_ROW_MAJOR, 'V', 'U', n, a, n, w, work, lwork, iwork, liwork);
}
lapack_int syevd_work(lapack_int n, double* a, double* w, double* work, lapack_int lwork, lapack_int* iwork,
                      lapack_int liwork) {
  return LAPACKE_dsyevd_work(LAPACK_ROW_MAJOR, 'V', 'U', n, a, n, w, work, lwork, iwork, liwork);
}

// ?syevd with eigenvectors on a row-major n x n matrix, with workspaces sized in integers. LAPACK
// answers a workspace query in the work array's own type, so ssyevd's float cannot hold its
// minimum 1 + 6n + 2n^2 exactly above n ~ 2,900 (2^24): it came back rounded down, and ssyevd then
// rejected it (argument 8, LWORK). The query's answer is kept only where it asks for more than the
// documented minimum (small n, where ssytrd's blocked optimum is larger and exact in a float).
// A rejected argument is reported in `rejected` (blas_errors.hpp), not printed.
template <class T>
lapack_int syevd(lapack_int n, T* a, T* w, std::string& rejected) {
  SingleThreadedLapack one;
  BlasErrorScope scope;
  const SyevdWorkspace need = syevd_workspace(n);
  T query = T(0);
  lapack_int iquery = 0;
  lapack_int info = syevd_work(n, a, w, &query, -1, &iquery, -1);
  if (info == 0) {
    const auto lwork = std::max<std::int64_t>(need.lwork, static_cast<std::int64_t>(query));
    const auto liwork = std::max<std::int64_t>(need.liwork, iquery);
    QUOPT_CHECK(lwork <= std::numeric_limits<lapack_int>::max(), "eigh: a ", n, " x ", n,
                " eigendecomposition needs a workspace of ", lwork,
                " elements, more than the LAPACK integer type holds; this LAPACK build cannot do it");
    std::vector<T> work(static_cast<std::size_t>(lwork));
    std::vector<lapack_int> iwork(static_cast<std::size_t>(liwork));
    info = syevd_work(n, a, w, work.data(), static_cast<lapack_int>(lwork), iwork.data(),
                      static_cast<lapack_int>(liwork));
  }
  rejected = scope.errors();
  return info;
}
lapack_int geqrf(lapack_int m, lapack_int n, float* a, float* tau) {
  SingleThreadedLapack one;
  return LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, m, n, a, n, tau);
}
lapack_int geqrf(lapack_int m, lapack_int n, double* a, double* tau) {
  SingleThreadedLapack one;
  return LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, m, n, a, n, tau);
}
lapack_int orgqr(lapack_int m, lapack_int n, float* a, const float* tau) {
  SingleThreadedLapack one;
  return LAPACKE_sorgqr(LAPACK_ROW_MAJOR, m, n, n, a, n, tau);
}
lapack_int orgqr(lapack_int m, lapack_int n, double* a, const double* tau) {
  SingleThreadedLapack one;
  return LAPACKE_dorgqr(LAPACK_ROW_MAJOR, m, n, n, a, n, tau);
}
lapack_int potrf(char uplo, lapack_int n, float* a) {
  SingleThreadedLapack one;
  return LAPACKE_spotrf(LAPACK_ROW_MAJOR, uplo, n, a, n);
}
lapack_int potrf(char uplo, lapack_int n, double* a) {
  SingleThreadedLapack one;
  return LAPACKE_dpotrf(LAPACK_ROW_MAJOR, uplo, n, a, n);
}
void trsm(CBLAS_SIDE side, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, CBLAS_DIAG diag, int m, int n,
          double alpha, const float* a, int lda, float* b, int ldb) {
  cblas_strsm(CblasRowMajor, side, uplo, trans, diag, m, n, static_cast<float>(alpha), a, lda, b, ldb);
}
void trsm(CBLAS_SIDE side, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, CBLAS_DIAG diag, int m, int n,
          double alpha, const double* a, int lda, double* b, int ldb) {
  cblas_dtrsm(CblasRowMajor, side, uplo, trans, diag, m, n, alpha, a, lda, b, ldb);
}

int to_int(const char* op, std::int64_t v) {
  QUOPT_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), op, ": dimension ", v,
              " does not fit the BLAS/LAPACK integer type");
  return static_cast<int>(v);
}

template <class T>
bool finite_range(const T* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

// One eigendecomposition attempt in precision T; input a (n x n) is copied.
template <class T>
int eigh_attempt(const T* a, std::int64_t n, std::vector<T>& w, std::vector<T>& q, std::string& rejected) {
  if constexpr (std::is_same_v<T, float>) {
    if (g_fail_next_f32_eigh > 0) {
      --g_fail_next_f32_eigh;
      return kInjected;
    }
  }
  const auto nn = static_cast<std::size_t>(n * n);
  if (!finite_range(a, n * n)) return kNonFinite;
  q.assign(a, a + nn);
  w.assign(static_cast<std::size_t>(n), T(0));
  if (n == 0) return 0;
  const lapack_int info = syevd(static_cast<lapack_int>(n), q.data(), w.data(), rejected);
  if (info != 0) return static_cast<int>(info);
  if (!finite_range(q.data(), n * n) || !finite_range(w.data(), n)) return kNonFinite;
  return 0;
}

// c = a b for n x n matrices in precision T (row-major).
template <class T>
void square_mm(std::int64_t n, const T* a, const T* b, T* c) {
  const int ni = static_cast<int>(n);
  gemm(false, false, ni, ni, ni, T(1), a, ni, b, ni, T(0), c, ni);
}

template <class T>
RootResult inverse_root_eigen_t(const Tensor& a, double p, double epsilon, bool retry_fp64) {
  RootResult res;
  const std::int64_t n = a.dim(0);
  to_int("inverse_root_eigen", n);
  // A_ridge = A + eps I in the input precision (the reference perturbs before the eigendecomposition).
  std::vector<T> ridge(a.data<T>(), a.data<T>() + n * n);
  for (std::int64_t i = 0; i < n; ++i) ridge[static_cast<std::size_t>(i * n + i)] += static_cast<T>(epsilon);
  Tensor ridge_t = Tensor::empty({n, n}, a.dtype());
  std::memcpy(ridge_t.raw(), ridge.data(), ridge.size() * sizeof(T));
  EighResult e = eigh(ridge_t, retry_fp64);
  if (!e.ok) {
    res.message = cat("eigendecomposition failed (LAPACK info ", e.info,
                      e.info == kNonFinite ? ", non-finite values" : "", e.message.empty() ? "" : ": ", e.message,
                      ")");
    return res;
  }
  res.used_fp64 = e.used_fp64;
  std::vector<T> L(e.eigenvalues.data<T>(), e.eigenvalues.data<T>() + n);
  if (n > 0) {
    const T lambda_min = *std::min_element(L.begin(), L.end());
    if (lambda_min < static_cast<T>(epsilon)) {
      for (auto& l : L) l = l - lambda_min;
      for (auto& l : L) l = l + static_cast<T>(epsilon);
    }
  }
  std::vector<T> scaled(e.eigenvectors.data<T>(), e.eigenvectors.data<T>() + n * n);
  for (std::int64_t j = 0; j < n; ++j) {
    const T s = static_cast<T>(std::pow(static_cast<double>(L[static_cast<std::size_t>(j)]), -1.0 / p));
    for (std::int64_t i = 0; i < n; ++i) scaled[static_cast<std::size_t>(i * n + j)] *= s;
  }
  res.root = Tensor::empty({n, n}, a.dtype());
  if (n > 0) {
    const int ni = static_cast<int>(n);
    gemm(false, true, ni, ni, ni, T(1), scaled.data(), ni, e.eigenvectors.data<T>(), ni, T(0),
         res.root.data<T>(), ni);
  }
  if (!finite_range(res.root.data<T>(), n * n)) {
    res.root = Tensor();
    res.message = "the inverse root has non-finite values (eigenvalues too small for the epsilon?)";
    return res;
  }
  res.ok = true;
  return res;
}

template <class T>
RootResult inverse_root_newton_t(const Tensor& a, int p, double epsilon, int max_iterations,
                                 double tolerance) {
  RootResult res;
  const std::int64_t n = a.dim(0);
  to_int("inverse_root_newton", n);
  const auto nn = static_cast<std::size_t>(n * n);
  std::vector<T> ridge(a.data<T>(), a.data<T>() + nn);
  for (std::int64_t i = 0; i < n; ++i) ridge[static_cast<std::size_t>(i * n + i)] += static_cast<T>(epsilon);
  if (!finite_range(ridge.data(), n * n)) {
    res.message = "the matrix has non-finite values";
    return res;
  }
  double fro = 0.0;
  for (T v : ridge) fro += static_cast<double>(v) * static_cast<double>(v);
  fro = std::sqrt(fro);
  if (!(fro > 0.0)) {
    res.message = "the matrix A + eps I is zero";
    return res;
  }
  const T alpha = static_cast<T>(-1.0 / p);
  const T z = static_cast<T>((p + 1) / (2.0 * fro));
  std::vector<T> X(nn, T(0)), M(nn), Mp(nn), tmp(nn), pw(nn), acc(nn);
  const T x0 = static_cast<T>(std::pow(static_cast<double>(z), 1.0 / p));
  for (std::int64_t i = 0; i < n; ++i) X[static_cast<std::size_t>(i * n + i)] = x0;
  for (std::size_t i = 0; i < nn; ++i) M[i] = z * ridge[i];
  auto dist_to_identity = [&](const std::vector<T>& m) {
    double e = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        const double d = static_cast<double>(m[static_cast<std::size_t>(i * n + j)]) - (i == j ? 1.0 : 0.0);
        e = std::max(e, std::abs(d));
      }
    return e;
  };
  double error = dist_to_identity(M);
  int it = 0;
  while (error > tolerance && it < max_iterations) {
    ++it;
    // M' = alpha M + (1 - alpha) I
    for (std::size_t i = 0; i < nn; ++i) Mp[i] = alpha * M[i];
    for (std::int64_t i = 0; i < n; ++i) Mp[static_cast<std::size_t>(i * n + i)] += T(1) - alpha;
    square_mm(n, X.data(), Mp.data(), tmp.data());
    X.swap(tmp);
    // M = M'^p M by binary powering.
    bool have = false;
    std::vector<T> base = Mp;
    for (int e = p; e > 0; e >>= 1) {
      if (e & 1) {
        if (!have) {
          acc = base;
          have = true;
        } else {
          square_mm(n, acc.data(), base.data(), tmp.data());
          acc.swap(tmp);
        }
      }
      if (e > 1) {
        square_mm(n, base.data(), base.data(), tmp.data());
        base.swap(tmp);
      }
    }
    square_mm(n, acc.data(), M.data(), tmp.data());
    M.swap(tmp);
    error = dist_to_identity(M);
    if (!std::isfinite(error)) break;
  }
  res.iterations = it;
  res.error = error;
  res.converged = error <= tolerance;
  if (!finite_range(X.data(), n * n)) {
    res.message = cat("coupled Newton iteration diverged (non-finite values after ", it, " iterations)");
    return res;
  }
  res.root = Tensor::empty({n, n}, a.dtype());
  std::memcpy(res.root.raw(), X.data(), nn * sizeof(T));
  res.ok = true;
  return res;
}

template <class T>
QrResult qr_t(const Tensor& a) {
  QrResult res;
  const std::int64_t m = a.dim(0), n = a.dim(1);
  to_int("qr", m);
  to_int("qr", n);
  std::vector<T> w(a.data<T>(), a.data<T>() + m * n);
  std::vector<T> tau(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)));
  res.r = Tensor::zeros({n, n}, a.dtype());
  res.q = Tensor::empty({m, n}, a.dtype());
  if (m == 0 || n == 0) {
    res.ok = true;
    return res;
  }
  lapack_int info = geqrf(static_cast<lapack_int>(m), static_cast<lapack_int>(n), w.data(), tau.data());
  if (info == 0) {
    T* r = res.r.data<T>();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = i; j < n; ++j) r[i * n + j] = w[static_cast<std::size_t>(i * n + j)];
    info = orgqr(static_cast<lapack_int>(m), static_cast<lapack_int>(n), w.data(), tau.data());
  }
  res.info = static_cast<int>(info);
  if (info != 0) return res;
  std::memcpy(res.q.raw(), w.data(), w.size() * sizeof(T));
  res.ok = finite_range(w.data(), m * n);
  if (!res.ok) res.info = kNonFinite;
  return res;
}

template <class F>
decltype(auto) with_dtype(DType dt, F&& f) {
  if (dt == DType::F64) return f(double{});
  return f(float{});
}

}  // namespace

namespace detail {
void fail_next_f32_eigh_for_testing(int count) {
  g_fail_next_f32_eigh = std::max(0, count);
}
}  // namespace detail

Tensor identity_matrix(std::int64_t n, DType dt, Device dev) {
  if (dev != Device::Host) return identity_matrix(n, dt).to(dev);
  Tensor t = Tensor::zeros({n, n}, dt);
  QUOPT_CHECK(dt == DType::F32 || dt == DType::F64, "identity_matrix: dtype must be f32 or f64, got ",
              dtype_name(dt));
  with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i * n + i] = T(1);
  });
  return t;
}

bool all_finite(const Tensor& t) {
  check_float("all_finite", t);
  if (!t.is_host()) return device_matrix::all_finite_device(t);
  return with_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return finite_range(t.data<T>(), t.numel());
  });
}

SyevdWorkspace syevd_workspace(std::int64_t n) {
  QUOPT_CHECK(n >= 0, "syevd_workspace: n = ", n, " must be >= 0");
  // LAPACK ?syevd, JOBZ = 'V': LWORK >= 1 + 6N + 2N^2, LIWORK >= 3 + 5N for N > 1; both 1 for N <= 1.
  if (n <= 1) return {1, 1};
  return {1 + 6 * n + 2 * n * n, 3 + 5 * n};
}

EighResult eigh(const Tensor& a, bool retry_fp64) {
  check_square("eigh", a);
  const std::int64_t n = a.dim(0);
  to_int("eigh", n);
  if (!a.is_host()) return device_matrix::eigh_device(a, retry_fp64);
  EighResult res;
  auto store = [&](auto& w, auto& q, DType dt) {
    using T = typename std::decay_t<decltype(w)>::value_type;
    Tensor wt = Tensor::empty({n}, DTypeOf<T>::value);
    Tensor qt = Tensor::empty({n, n}, DTypeOf<T>::value);
    std::memcpy(wt.raw(), w.data(), w.size() * sizeof(T));
    std::memcpy(qt.raw(), q.data(), q.size() * sizeof(T));
    res.eigenvalues = dt == wt.dtype() ? wt : wt.astype(dt);
    res.eigenvectors = dt == qt.dtype() ? qt : qt.astype(dt);
  };
  // What LAPACK rejected in each attempt, for the caller's message.
  auto note = [&](const char* precision, const std::string& rejected) {
    if (rejected.empty()) return;
    if (!res.message.empty()) res.message += "; ";
    res.message += cat(precision, " attempt: ", rejected);
  };
  std::string rejected;
  if (a.dtype() == DType::F64) {
    std::vector<double> w, q;
    res.info = eigh_attempt(a.data<double>(), n, w, q, rejected);
    note("fp64", rejected);
    res.ok = res.info == 0;
    if (res.ok) store(w, q, DType::F64);
    return res;
  }
  std::vector<float> w, q;
  res.info = eigh_attempt(a.data<float>(), n, w, q, rejected);
  note("f32", rejected);
  if (res.info == 0) {
    res.ok = true;
    store(w, q, DType::F32);
    return res;
  }
  if (!retry_fp64) return res;
  const Tensor a64 = a.astype(DType::F64);
  std::vector<double> wd, qd;
  res.info = eigh_attempt(a64.data<double>(), n, wd, qd, rejected);
  note("fp64 retry", rejected);
  if (res.info != 0) return res;
  store(wd, qd, DType::F32);
  // The f32 conversion of a huge fp64 eigenvalue may overflow.
  res.ok = all_finite(res.eigenvalues) && all_finite(res.eigenvectors);
  if (!res.ok) res.info = kNonFinite;
  res.used_fp64 = res.ok;
  return res;
}

QrResult qr(const Tensor& a) {
  check_float("qr", a);
  QUOPT_CHECK(a.ndim() == 2 && a.dim(0) >= a.dim(1), "qr: expected a matrix [m, n] with m >= n, got ",
              a.describe());
  if (!a.is_host()) return device_matrix::qr_device(a);
  return with_dtype(a.dtype(), [&](auto tag) { return qr_t<decltype(tag)>(a); });
}

int cholesky(Tensor& a, bool upper) {
  check_square("cholesky", a);
  const std::int64_t n = a.dim(0);
  to_int("cholesky", n);
  if (n == 0) return 0;
  return with_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = a.data<T>();
    const lapack_int info = potrf(upper ? 'U' : 'L', static_cast<lapack_int>(n), p);
    if (info == 0) {
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < n; ++j)
          if (upper ? j < i : j > i) p[i * n + j] = T(0);
    }
    return static_cast<int>(info);
  });
}

void triangular_solve(const Tensor& a, Tensor& b, bool left, bool upper, bool trans, bool unit_diag,
                      double alpha) {
  check_square("triangular_solve", a);
  check_float("triangular_solve", b);
  QUOPT_CHECK(a.dtype() == b.dtype(), "triangular_solve: a is ", a.describe(), " but b is ", b.describe());
  QUOPT_CHECK(b.ndim() == 2, "triangular_solve: b must be a matrix, got ", b.describe());
  const std::int64_t m = b.dim(0), n = b.dim(1);
  QUOPT_CHECK(a.dim(0) == (left ? m : n), "triangular_solve: a is ", a.describe(), " but b is ", b.describe(),
              left ? " (a must be [m, m] for a left solve)" : " (a must be [n, n] for a right solve)");
  if (m == 0 || n == 0) return;
  const int mi = to_int("triangular_solve", m), ni = to_int("triangular_solve", n);
  const int lda = static_cast<int>(a.dim(0));
  with_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    trsm(left ? CblasLeft : CblasRight, upper ? CblasUpper : CblasLower, trans ? CblasTrans : CblasNoTrans,
         unit_diag ? CblasUnit : CblasNonUnit, mi, ni, alpha, a.data<T>(), lda, b.data<T>(), ni);
  });
}

RootResult inverse_root_eigen(const Tensor& a, double p, double epsilon, bool retry_fp64) {
  check_square("inverse_root_eigen", a);
  QUOPT_CHECK(p > 0.0 && std::isfinite(p), "inverse_root_eigen: root p = ", p, " must be positive");
  QUOPT_CHECK(std::isfinite(epsilon) && epsilon >= 0.0, "inverse_root_eigen: epsilon = ", epsilon,
              " must be finite and >= 0");
  if (!a.is_host()) return device_matrix::inverse_root_eigen_device(a, p, epsilon, retry_fp64);
  return with_dtype(a.dtype(),
                    [&](auto tag) { return inverse_root_eigen_t<decltype(tag)>(a, p, epsilon, retry_fp64); });
}

RootResult inverse_root_newton(const Tensor& a, int p, double epsilon, int max_iterations, double tolerance) {
  check_square("inverse_root_newton", a);
  QUOPT_CHECK(p >= 1, "inverse_root_newton: root p = ", p, " must be an integer >= 1");
  QUOPT_CHECK(max_iterations >= 0, "inverse_root_newton: max_iterations = ", max_iterations, " must be >= 0");
  QUOPT_CHECK(std::isfinite(epsilon) && epsilon >= 0.0, "inverse_root_newton: epsilon = ", epsilon,
              " must be finite and >= 0");
  if (!a.is_host()) return device_matrix::inverse_root_newton_device(a, p, epsilon, max_iterations, tolerance);
  return with_dtype(a.dtype(), [&](auto tag) {
    return inverse_root_newton_t<decltype(tag)>(a, p, epsilon, max_iterations, tolerance);
  });
}

}  // namespace quopt
