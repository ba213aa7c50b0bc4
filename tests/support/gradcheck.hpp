#pragma once
// Finite-difference gradient checks in fp64: central differences with step h, compared to an
// analytic gradient by the relative error |num - ana| / max(|num|, |ana|, floor).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "core/rng.hpp"
#include "core/tensor.hpp"

namespace quopt::testing {

// Fills a host f64/f32 tensor with N(0, std^2) values from a fixed stream.
inline void fill_normal(Tensor& t, std::uint64_t seed, double std = 1.0) {
  Rng rng(seed, 7);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const double v = rng.normal() * std;
    if (t.dtype() == DType::F64)
      t.data<double>()[i] = v;
    else
      t.data<float>()[i] = static_cast<float>(v);
  }
}

inline Tensor randn(const Shape& s, std::uint64_t seed, DType dt = DType::F64, double std = 1.0) {
  Tensor t = Tensor::empty(s, dt);
  fill_normal(t, seed, std);
  return t;
}

// Checks d loss / d x[i] for up to max_entries entries of x (all if max_entries <= 0 or >= numel),
// where loss() re-evaluates the scalar objective from the current contents of x (f64).
inline void expect_gradient(const std::string& what, Tensor& x, const Tensor& analytic,
                            const std::function<double()>& loss, double tol = 1e-6, double h = 1e-6,
                            std::int64_t max_entries = 0, double floor = 1e-8) {
  ASSERT_EQ(x.dtype(), DType::F64) << what;
  ASSERT_EQ(x.numel(), analytic.numel()) << what;
  const std::int64_t n = x.numel();
  const std::int64_t count = (max_entries <= 0 || max_entries >= n) ? n : max_entries;
  Rng pick(1234, hash_name(what));
  for (std::int64_t c = 0; c < count; ++c) {
    const std::int64_t i =
        count == n ? c : static_cast<std::int64_t>(pick.below(static_cast<std::uint64_t>(n)));
    double* p = x.data<double>() + i;
    const double saved = *p;
    *p = saved + h;
    const double lp = loss();
    *p = saved - h;
    const double lm = loss();
    *p = saved;
    const double num = (lp - lm) / (2 * h);
    const double ana = analytic.item(i);
    const double rel = std::fabs(num - ana) / std::max({std::fabs(num), std::fabs(ana), floor});
    EXPECT_LE(rel, tol) << what << "[" << i << "]: numeric " << num << " analytic " << ana;
  }
}

}  // namespace quopt::testing
