// Host twins of the PSGD-Kron primitives (kernels/psgd_ops.hpp). The loops run in index order with the
// arithmetic of kron_torch's formulas as psgd_kron.cpp applies them (f32 state, fp64 sums); the CUDA twins
// (kernels/cuda/psgd.cu) follow the same orders where they promise the same bits.
#include "kernels/host/psgd.hpp"

#include <cblas.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

namespace quopt::kernels::host {

namespace {

// The smallest normal float: kron_torch clamps every denominator at torch.finfo(float32).tiny.
constexpr float kTiny = FLT_MIN;

void trmm(CBLAS_SIDE s, CBLAS_UPLO u, CBLAS_TRANSPOSE t, int m, int n, const float* a, int lda, float* b,
          int ldb) {
  cblas_strmm(CblasRowMajor, s, u, t, CblasNonUnit, m, n, 1.0f, a, lda, b, ldb);
}
void trmm(CBLAS_SIDE s, CBLAS_UPLO u, CBLAS_TRANSPOSE t, int m, int n, const double* a, int lda, double* b,
          int ldb) {
  cblas_dtrmm(CblasRowMajor, s, u, t, CblasNonUnit, m, n, 1.0, a, lda, b, ldb);
}
void trsm(CBLAS_SIDE s, CBLAS_TRANSPOSE t, int m, int n, const float* a, int lda, float* b, int ldb) {
  cblas_strsm(CblasRowMajor, s, CblasUpper, t, CblasNonUnit, m, n, 1.0f, a, lda, b, ldb);
}
void trsm(CBLAS_SIDE s, CBLAS_TRANSPOSE t, int m, int n, const double* a, int lda, double* b, int ldb) {
  cblas_dtrsm(CblasRowMajor, s, CblasUpper, t, CblasNonUnit, m, n, 1.0, a, lda, b, ldb);
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
}

template <class T>
bool all_finite(const T* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

}  // namespace

template <class T>
void triangular_apply(const T* f, int side, bool trans, bool solve, T* x, std::int64_t rows,
                      std::int64_t cols) {
  const auto s = side == 0 ? CblasLeft : CblasRight;
  const auto t = trans ? CblasTrans : CblasNoTrans;
  const int n = static_cast<int>(side == 0 ? rows : cols);
  if (solve)
    trsm(s, t, static_cast<int>(rows), static_cast<int>(cols), f, n, x, static_cast<int>(cols));
  else
    trmm(s, CblasUpper, t, static_cast<int>(rows), static_cast<int>(cols), f, n, x, static_cast<int>(cols));
}

template <class T>
void diagonal_apply(const T* d, int side, bool solve, T* x, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const T s = d[side == 0 ? i : j];
      T& v = x[i * cols + j];
      v = solve ? v / s : v * s;
    }
}

template <class T>
void gram(const T* x, std::int64_t n, std::int64_t k, bool transposed, T* c) {
  const int ni = static_cast<int>(n), ki = static_cast<int>(k);
  if (!transposed)
    gemm(CblasNoTrans, CblasTrans, ni, ni, ki, x, ki, x, ki, c, ni);
  else
    gemm(CblasTrans, CblasNoTrans, ni, ni, ki, x, ni, x, ni, c, ni);
}

template <class T>
void sum_squares_axis(const T* x, std::int64_t rows, std::int64_t cols, int side, T* out) {
  const std::int64_t n = side == 0 ? rows : cols;
  std::vector<double> acc(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const double v = x[i * cols + j];
      acc[static_cast<std::size_t>(side == 0 ? i : j)] += v * v;
    }
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(acc[static_cast<std::size_t>(i)]);
}

template <class T>
double abs_sum(const T* x, std::int64_t n) {
  double s = 0.0;
  for (std::int64_t k = 0; k < n; ++k) s += std::fabs(x[k]);
  return s;
}

template <class T>
double max_abs(const T* x, std::int64_t n) {
  double m = 0.0;
  for (std::int64_t k = 0; k < n; ++k) m = std::max(m, static_cast<double>(std::fabs(x[k])));
  return m;
}

template <class T>
void divide(const T* x, std::int64_t n, double d, T* out) {
  const T dt = static_cast<T>(d);
  for (std::int64_t k = 0; k < n; ++k) out[k] = x[k] / dt;
}

template <class T>
void decayed_update(T* w, const T* d, std::int64_t n, double lr, double wd) {
  const T l = static_cast<T>(lr), c = static_cast<T>(wd);
  for (std::int64_t k = 0; k < n; ++k) w[k] -= l * (d[k] + c * w[k]);
}

template <class T>
double clip_rms(T* x, std::int64_t n, double clip) {
  if (clip <= 0.0 || n == 0) return 1.0;
  double ss = 0.0;
  for (std::int64_t k = 0; k < n; ++k) ss += static_cast<double>(x[k]) * x[k];
  const double rms = std::sqrt(ss / static_cast<double>(n));
  const double c = std::min(1.0, clip / (rms + 1e-12));
  if (c < 1.0) {
    const T ct = static_cast<T>(c);
    for (std::int64_t k = 0; k < n; ++k) x[k] *= ct;
  }
  return c;
}

template <class T>
double norm_lower_bound(const T* s, std::int64_t n) {
  const double m = max_abs(s, n * n);
  if (!(m > 0.0)) return 0.0;
  // The column with the largest norm (first on ties, as torch.argmax).
  std::int64_t best = 0;
  double best_norm = -1.0;
  for (std::int64_t j = 0; j < n; ++j) {
    double a = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = s[i * n + j] / m;
      a += v * v;
    }
    if (a > best_norm) {
      best_norm = a;
      best = j;
    }
  }
  std::vector<double> x(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = s[i * n + best] / m;
  for (std::int64_t i = 0; i < n; ++i)  // y = x^T S'
    for (std::int64_t j = 0; j < n; ++j)
      y[static_cast<std::size_t>(j)] += x[static_cast<std::size_t>(i)] * s[i * n + j] / m;
  double ny = 0.0;
  for (double v : y) ny += v * v;
  ny = std::sqrt(ny);
  double nz = 0.0;
  for (std::int64_t k = 0; k < n; ++k) {  // z = S' y / |y|
    double z = 0.0;
    for (std::int64_t j = 0; j < n; ++j) z += s[k * n + j] / m * (y[static_cast<std::size_t>(j)] / ny);
    nz += z * z;
  }
  return std::sqrt(nz) * m;
}

template <class T>
bool psgd_diagonal_update(T* q, const T* t1, const T* t2, std::int64_t n, double lr) {
  const T l = static_cast<T>(lr);
  T norm = 0;  // max |t1 + t2|
  for (std::int64_t i = 0; i < n; ++i) norm = std::max(norm, std::fabs(t1[i] + t2[i]));
  norm = std::max(norm, static_cast<T>(kTiny));
  std::vector<T> next(q, q + n);
  for (std::int64_t i = 0; i < n; ++i) next[i] -= ((t1[i] - t2[i]) * l) * (q[i] / norm);
  if (!all_finite(next.data(), n)) return false;
  std::copy(next.begin(), next.end(), q);
  return true;
}

template <class T>
bool psgd_triangular_update(T* q, const T* t1, const T* t2, std::int64_t n, double lr) {
  const T l = static_cast<T>(lr);
  const std::size_t nn = static_cast<std::size_t>(n * n);
  std::vector<T> sum(nn), e(nn, T(0));
  for (std::size_t k = 0; k < nn; ++k) sum[k] = t1[k] + t2[k];
  const T denom = std::max(static_cast<T>(norm_lower_bound(sum.data(), n)), static_cast<T>(kTiny));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i; j < n; ++j) e[i * n + j] = ((t1[i * n + j] - t2[i * n + j]) * l) / denom;
  // prod = triu(e) q (q upper triangular, so the product is upper triangular).
  std::vector<T> prod(q, q + nn);
  trmm(CblasLeft, CblasUpper, CblasNoTrans, static_cast<int>(n), static_cast<int>(n), e.data(),
       static_cast<int>(n), prod.data(), static_cast<int>(n));
  std::vector<T> next(q, q + nn);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      T& x = next[static_cast<std::size_t>(i * n + j)];
      x = j < i ? T(0) : x - prod[static_cast<std::size_t>(i * n + j)];
    }
  if (!all_finite(next.data(), static_cast<std::int64_t>(nn))) return false;
  std::copy(next.begin(), next.end(), q);
  return true;
}

#define QUOPT_INSTANTIATE(T)                                                                    \
  template void triangular_apply<T>(const T*, int, bool, bool, T*, std::int64_t, std::int64_t); \
  template void diagonal_apply<T>(const T*, int, bool, T*, std::int64_t, std::int64_t);         \
  template void gram<T>(const T*, std::int64_t, std::int64_t, bool, T*);                        \
  template void sum_squares_axis<T>(const T*, std::int64_t, std::int64_t, int, T*);             \
  template double abs_sum<T>(const T*, std::int64_t);                                           \
  template double max_abs<T>(const T*, std::int64_t);                                           \
  template void divide<T>(const T*, std::int64_t, double, T*);                                  \
  template void decayed_update<T>(T*, const T*, std::int64_t, double, double);                  \
  template double clip_rms<T>(T*, std::int64_t, double);                                        \
  template double norm_lower_bound<T>(const T*, std::int64_t);                                  \
  template bool psgd_diagonal_update<T>(T*, const T*, const T*, std::int64_t, double);          \
  template bool psgd_triangular_update<T>(T*, const T*, const T*, std::int64_t, double);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::host
