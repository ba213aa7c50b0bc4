#pragma once
// Plain fp64 dense-matrix helpers for the tests' independent reference implementations (row-major
// std::vector<double>, loops rather than BLAS where the result is compared with production code), and
// conversions between such matrices and tensors.
#include <gtest/gtest.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/rng.hpp"
#include "core/tensor.hpp"

namespace quopt::testing {

using Mat = std::vector<double>;  // row-major

// All elements as doubles.
inline Mat values(const Tensor& t) {
  Mat a(static_cast<std::size_t>(t.numel()));
  for (std::int64_t i = 0; i < t.numel(); ++i) a[static_cast<std::size_t>(i)] = t.item(i);
  return a;
}

// Writes `a` into an F32 or F64 tensor of the same number of elements.
inline void fill(Tensor& t, const Mat& a) {
  EXPECT_EQ(static_cast<std::size_t>(t.numel()), a.size());
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (t.dtype() == DType::F64)
      t.data<double>()[i] = a[static_cast<std::size_t>(i)];
    else
      t.data<float>()[i] = static_cast<float>(a[static_cast<std::size_t>(i)]);
  }
}

inline Tensor to_tensor(const Mat& a, const Shape& shape, DType dt) {
  Tensor t = Tensor::empty(shape, dt);
  fill(t, a);
  return t;
}

// Standard normal values times `scale` into an F32 tensor.
inline void fill_normal(Tensor& t, Rng& rng, double scale = 1.0) {
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(scale * rng.normal());
}

// Normal values rounded to multiples of 1/64: exactly representable in f32, so an fp64 reference and an
// f32 implementation start from the same numbers.
inline Mat random_values(std::int64_t n, Rng& rng, double scale = 1.0) {
  Mat a(static_cast<std::size_t>(n));
  for (auto& v : a) v = std::round(rng.normal() * 64.0 * scale) / 64.0;
  return a;
}

// C [m, n] = op(A) op(B) with op(A) [m, k], op(B) [k, n]; ta / tb: A is stored [k, m] / B is stored [n, k].
inline Mat matmul(const Mat& a, const Mat& b, std::int64_t m, std::int64_t k, std::int64_t n, bool ta = false,
                  bool tb = false) {
  Mat c(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t p = 0; p < k; ++p) {
      const double av = ta ? a[p * m + i] : a[i * k + p];
      for (std::int64_t j = 0; j < n; ++j) c[i * n + j] += av * (tb ? b[j * k + p] : b[p * n + j]);
    }
  return c;
}

inline Mat identity(std::int64_t n) {
  Mat e(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) e[i * n + i] = 1.0;
  return e;
}

// Singular values (descending) of an m x n matrix, by LAPACK's dgesvd.
inline std::vector<double> singular_values(const Mat& a, int m, int n) {
  Mat w = a;
  const int k = std::min(m, n);
  std::vector<double> s(static_cast<std::size_t>(k)), sup(static_cast<std::size_t>(k));
  EXPECT_EQ(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', m, n, w.data(), n, s.data(), nullptr, 1, nullptr, 1,
                           sup.data()),
            0);
  return s;
}

// Cyclic Jacobi eigendecomposition of a symmetric n x n matrix: a = v diag(w) v^T (independent of the
// LAPACK path the optimizers use).
inline void jacobi_eigh(Mat a, int n, std::vector<double>& w, Mat& v) {
  v = identity(n);
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) off += a[i * n + j] * a[i * n + j];
    if (off < 1e-30) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        if (std::abs(a[p * n + q]) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * a[p * n + q]);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  w.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) w[static_cast<std::size_t>(i)] = a[i * n + i];
}

}  // namespace quopt::testing
