#pragma once
// Helpers shared by the kernel unit tests (tests/unit/test_kernels_*.cpp): random tensors, comparison
// against a reference computed in double, and error-message checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"
#include "kernels/ops.hpp"
#include "kernels/optim_ops.hpp"
#include "support/dense_reference.hpp"
#include "support/gradcheck.hpp"

namespace quopt::testing {

// Tolerance of a forward result against a double reference: fp64 to rounding, fp32 to ~100 ulp.
inline double tol_for(DType dt) {
  return dt == DType::F64 ? 1e-12 : 1e-5;
}

// Name suffix of tests parameterised by dtype ("f64", "f32").
inline std::string dtype_param_name(const ::testing::TestParamInfo<DType>& p) {
  return dtype_name(p.param);
}

// Norm-wise relative error max_i |got_i - ref_i| / max(max_i |ref_i|, 1e-300).
inline double max_rel_err(const Tensor& got, const std::vector<double>& ref) {
  EXPECT_EQ(static_cast<std::size_t>(got.numel()), ref.size());
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < ref.size() && i < static_cast<std::size_t>(got.numel()); ++i) {
    const double g = got.item(static_cast<std::int64_t>(i));
    if (std::isnan(g) != std::isnan(ref[i])) return INFINITY;
    diff = std::max(diff, std::fabs(g - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return diff / std::max(scale, 1e-300);
}

inline void expect_close(const std::string& what, const Tensor& got, const std::vector<double>& ref,
                         double tol) {
  const double err = max_rel_err(got, ref);
  EXPECT_LE(err, tol) << what << ": relative error " << err << " for " << got.describe();
}

// f must throw quopt::Error whose message contains every string in parts.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected quopt::Error mentioning '" << (parts.empty() ? "" : parts[0]) << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

// A random symmetric positive definite n x n matrix G G^T / n + I / 2 (G standard normal), on the host.
inline Tensor random_spd(std::int64_t n, std::uint64_t seed, DType dt) {
  Tensor g = randn({n, n}, seed, dt), a = Tensor::empty({n, n}, dt);
  kernels::matmul(g, false, g, true, a, 1.0 / static_cast<double>(n));
  kernels::add_diagonal(a, 0.5);
  return a;
}

// sum_i out_i * r_i in double (the scalar loss whose gradient wrt out is r).
inline double dot(const Tensor& out, const Tensor& r) {
  double s = 0.0;
  for (std::int64_t i = 0; i < out.numel(); ++i) s += out.item(i) * r.item(i);
  return s;
}

}  // namespace quopt::testing
