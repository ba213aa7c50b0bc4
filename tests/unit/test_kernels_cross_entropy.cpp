// Softmax cross-entropy kernels (kernels/ops.hpp): loss against a naive log-softmax, ignored
// targets, z-loss value and gradient by finite differences, in-place backward, stability for
// large logits, fp32 vs fp64, and argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/tensor.hpp"
#include "kernels/ops.hpp"
#include "support/gradcheck.hpp"

namespace quopt {
namespace {

using kernels::cross_entropy_backward;
using kernels::cross_entropy_forward;
using testing::randn;

// Random targets in [0, V), with every `ignore_every`-th token set to -1 (ignored); 0 = none ignored.
Tensor make_targets(std::int64_t n, std::int64_t vocab, std::uint64_t seed, std::int64_t ignore_every) {
  Tensor t = Tensor::empty({n}, DType::I32);
  Rng rng(seed, 3);
  for (std::int64_t i = 0; i < n; ++i) {
    const bool ignored = ignore_every > 0 && i % ignore_every == ignore_every - 1;
    t.data<std::int32_t>()[i] =
        ignored ? -1 : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(vocab)));
  }
  return t;
}

Tensor nan_tensor(const Shape& s, DType dt) {
  Tensor t = Tensor::empty(s, dt);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DType::F64) {
      t.data<double>()[i] = std::numeric_limits<double>::quiet_NaN();
    } else {
      t.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  return t;
}

// Naive reference in fp64: log_softmax_j = x_j - log(sum_k exp(x_k)) straight from the definition
// (inputs are kept small enough for the unshifted exp), loss = -log_softmax[t] + z * lse^2.
struct Reference {
  std::vector<double> loss, lse;
  double total = 0.0;
};
Reference naive_cross_entropy(const Tensor& logits, const Tensor& targets, double z) {
  const std::int64_t n = logits.dim(0), vocab = logits.dim(1);
  Reference r;
  for (std::int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::int64_t j = 0; j < vocab; ++j) s += std::exp(logits.item(i * vocab + j));
    const double lse = std::log(s);
    r.lse.push_back(lse);
    const std::int32_t t = targets.data<std::int32_t>()[i];
    if (t < 0) {
      r.loss.push_back(0.0);
      continue;
    }
    const double log_softmax_t = logits.item(i * vocab + t) - lse;
    r.loss.push_back(-log_softmax_t + z * lse * lse);
    r.total += r.loss.back();
  }
  return r;
}

void expect_near_vec(const std::string& what, const Tensor& got, const std::vector<double>& want,
                     double tol) {
  ASSERT_EQ(got.numel(), static_cast<std::int64_t>(want.size())) << what;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    const double w = want[static_cast<std::size_t>(i)];
    ASSERT_NEAR(got.item(i), w, tol * (1.0 + std::fabs(w))) << what << "[" << i << "]";
  }
}

struct Forward {
  Tensor loss, lse;
  double total = 0.0;
};
Forward run_forward(const Tensor& logits, const Tensor& targets, double z) {
  Forward f{nan_tensor({logits.dim(0)}, logits.dtype()), nan_tensor({logits.dim(0)}, logits.dtype())};
  f.total = cross_entropy_forward(logits, targets, z, f.loss, f.lse);
  return f;
}

TEST(KernelsCrossEntropy, LossMatchesNaiveLogSoftmax) {
  const std::int64_t n = 13, vocab = 37;
  const Tensor logits = randn({n, vocab}, 10, DType::F64, 2.0);
  const Tensor targets = make_targets(n, vocab, 11, 0);
  const Reference ref = naive_cross_entropy(logits, targets, 0.0);
  const Forward f64 = run_forward(logits, targets, 0.0);
  expect_near_vec("loss f64", f64.loss, ref.loss, 1e-13);
  expect_near_vec("lse f64", f64.lse, ref.lse, 1e-13);
  EXPECT_NEAR(f64.total, ref.total, 1e-12 * ref.total);

  const Forward f32 = run_forward(logits.astype(DType::F32), targets, 0.0);
  expect_near_vec("loss f32", f32.loss, ref.loss, 1e-6);
  expect_near_vec("lse f32", f32.lse, ref.lse, 1e-6);
  EXPECT_NEAR(f32.total, ref.total, 1e-6 * ref.total);
}

TEST(KernelsCrossEntropy, IgnoredTargets) {
  const std::int64_t n = 12, vocab = 9;
  const Tensor logits = randn({n, vocab}, 20);
  const Tensor targets = make_targets(n, vocab, 21, 3);  // rows 2, 5, 8, 11 ignored
  const Reference ref = naive_cross_entropy(logits, targets, 1e-3);
  const Forward f = run_forward(logits, targets, 1e-3);
  expect_near_vec("loss", f.loss, ref.loss, 1e-13);
  EXPECT_NEAR(f.total, ref.total, 1e-12 * ref.total);
  Tensor dlogits = nan_tensor(logits.shape(), DType::F64);
  cross_entropy_backward(logits, targets, f.lse, 1e-3, 1.0, dlogits);
  for (std::int64_t i = 0; i < n; ++i) {
    const bool ignored = targets.data<std::int32_t>()[i] < 0;
    EXPECT_EQ(ignored, i % 3 == 2);
    if (ignored) {
      EXPECT_EQ(f.loss.item(i), 0.0) << "row " << i;
    }
    for (std::int64_t j = 0; j < vocab; ++j) {
      const double g = dlogits.item(i * vocab + j);
      ASSERT_FALSE(std::isnan(g)) << "row " << i << " col " << j << " not written";
      if (ignored) {
        ASSERT_EQ(g, 0.0) << "row " << i;
      }
    }
  }

  // Every token ignored: zero loss, zero gradient.
  Tensor none = Tensor::empty({n}, DType::I32);
  for (std::int64_t i = 0; i < n; ++i) none.data<std::int32_t>()[i] = -7;
  const Forward f0 = run_forward(logits, none, 1e-3);
  EXPECT_EQ(f0.total, 0.0);
  cross_entropy_backward(logits, none, f0.lse, 1e-3, 1.0, dlogits);
  for (std::int64_t i = 0; i < dlogits.numel(); ++i) ASSERT_EQ(dlogits.item(i), 0.0);
}

TEST(KernelsCrossEntropy, ZLossValue) {
  const std::int64_t n = 8, vocab = 50;
  const Tensor logits = randn({n, vocab}, 30, DType::F64, 1.5);
  const Tensor targets = make_targets(n, vocab, 31, 0);
  const Reference plain = naive_cross_entropy(logits, targets, 0.0);
  for (const double z : {1e-5 /* OLMo2's z-loss coefficient */, 1e-2}) {
    const Forward f = run_forward(logits, targets, z);
    double want_total = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double lse = plain.lse[static_cast<std::size_t>(i)];
      const double want = plain.loss[static_cast<std::size_t>(i)] + z * lse * lse;
      want_total += want;
      EXPECT_NEAR(f.loss.item(i), want, 1e-13 * (1 + want)) << "z=" << z << " row " << i;
    }
    EXPECT_NEAR(f.total, want_total, 1e-12 * want_total);
    EXPECT_GT(f.total - plain.total, 0.5 * z * n) << "the z-loss term must add to the loss (lse > 1 here)";
  }
}

TEST(KernelsCrossEntropy, GradientMatchesFiniteDifferences) {
  const std::int64_t n = 7, vocab = 11;
  const double dscale = 0.25;
  for (const double z : {0.0, 1e-2}) {
    Tensor logits = randn({n, vocab}, 40, DType::F64, 2.0);
    const Tensor targets = make_targets(n, vocab, 41, 4);  // row 3 ignored
    const Forward f = run_forward(logits, targets, z);
    Tensor dlogits = nan_tensor(logits.shape(), DType::F64);
    cross_entropy_backward(logits, targets, f.lse, z, dscale, dlogits);
    const auto objective = [&] {
      Tensor loss = Tensor::empty({n}, DType::F64), lse = Tensor::empty({n}, DType::F64);
      return dscale * cross_entropy_forward(logits, targets, z, loss, lse);
    };
    // Step 1e-4: truncation ~1e-10 here; smaller steps amplify the rounding of the summed loss.
    testing::expect_gradient(z == 0.0 ? "dlogits" : "dlogits_zloss", logits, dlogits, objective, 1e-6, 1e-4,
                             0, 1e-4);
  }
}

TEST(KernelsCrossEntropy, InPlaceMatchesSeparateBuffers) {
  const std::int64_t n = 9, vocab = 64;
  for (const DType dt : {DType::F64, DType::F32}) {
    const Tensor logits = randn({n, vocab}, 50, dt, 3.0);
    const Tensor targets = make_targets(n, vocab, 51, 4);
    const Forward f = run_forward(logits, targets, 1e-4);
    Tensor separate = nan_tensor(logits.shape(), dt);
    cross_entropy_backward(logits, targets, f.lse, 1e-4, 1.0 / 7.0, separate);
    Tensor inplace = logits.clone();
    cross_entropy_backward(inplace, targets, f.lse, 1e-4, 1.0 / 7.0, inplace);
    for (std::int64_t i = 0; i < logits.numel(); ++i) {
      ASSERT_EQ(inplace.item(i), separate.item(i)) << dtype_name(dt) << " [" << i << "]";
    }
  }
}

// Large logits overflow a naive exp; the kernel shifts by the row max. The loss is invariant to a
// constant added to a row, so logits + 1000 must give the loss of the unshifted logits.
TEST(KernelsCrossEntropy, StableForLargeLogits) {
  const std::int64_t n = 6, vocab = 40;
  const Tensor logits = randn({n, vocab}, 60, DType::F64, 2.0);
  const Tensor targets = make_targets(n, vocab, 61, 0);
  const Reference ref = naive_cross_entropy(logits, targets, 0.0);
  Tensor shifted = logits.clone();
  for (std::int64_t i = 0; i < shifted.numel(); ++i) shifted.data<double>()[i] += 1000.0;
  const Forward f = run_forward(shifted, targets, 0.0);
  expect_near_vec("loss", f.loss, ref.loss, 1e-10);
  for (std::int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(f.lse.item(i), ref.lse[static_cast<std::size_t>(i)] + 1000.0, 1e-10);
  }
  const Forward f32 = run_forward(shifted.astype(DType::F32), targets, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(f32.loss.item(i)));
    // fp32 logits near 1000 carry ~3e-5 absolute rounding each.
    EXPECT_NEAR(f32.loss.item(i), ref.loss[static_cast<std::size_t>(i)], 2e-4);
  }
  Tensor d = nan_tensor(shifted.shape(), DType::F32);
  cross_entropy_backward(shifted.astype(DType::F32), targets, f32.lse, 0.0, 1.0, d);
  for (std::int64_t i = 0; i < d.numel(); ++i) ASSERT_TRUE(std::isfinite(d.item(i)));
}

// The gradient of a counted row sums to dscale * 2 z lse (softmax sums to one, the one-hot to one).
TEST(KernelsCrossEntropy, GradientRowSums) {
  const std::int64_t n = 5, vocab = 200;
  const double z = 1e-2, dscale = 0.5;
  const Tensor logits = randn({n, vocab}, 70, DType::F32);
  const Tensor targets = make_targets(n, vocab, 71, 0);
  const Forward f = run_forward(logits, targets, z);
  Tensor d = nan_tensor(logits.shape(), DType::F32);
  cross_entropy_backward(logits, targets, f.lse, z, dscale, d);
  for (std::int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::int64_t j = 0; j < vocab; ++j) s += d.item(i * vocab + j);
    EXPECT_NEAR(s, dscale * 2.0 * z * f.lse.item(i), 1e-6) << "row " << i;
    const std::int32_t t = targets.data<std::int32_t>()[i];
    EXPECT_LT(d.item(i * vocab + t), 0.0) << "the target's gradient is negative";
  }
}

TEST(KernelsCrossEntropy, WrongArgumentsThrow) {
  const std::int64_t n = 4, vocab = 6;
  const Tensor logits = randn({n, vocab}, 80);
  const Tensor targets = make_targets(n, vocab, 81, 0);
  Tensor loss = Tensor::empty({n}, DType::F64), lse = Tensor::empty({n}, DType::F64);
  EXPECT_NO_THROW(cross_entropy_forward(logits, targets, 0.0, loss, lse));

  EXPECT_THROW(cross_entropy_forward(logits.reshape({n * vocab}), targets, 0.0, loss, lse), Error);
  EXPECT_THROW(cross_entropy_forward(logits.reshape({2, 2, vocab}), targets, 0.0, loss, lse), Error);
  EXPECT_THROW(cross_entropy_forward(logits, targets.astype(DType::F32), 0.0, loss, lse), Error);
  EXPECT_THROW(cross_entropy_forward(logits, targets.slice(0, n - 1), 0.0, loss, lse), Error);
  Tensor loss_short = Tensor::empty({n - 1}, DType::F64), lse32 = Tensor::empty({n}, DType::F32);
  EXPECT_THROW(cross_entropy_forward(logits, targets, 0.0, loss_short, lse), Error);
  EXPECT_THROW(cross_entropy_forward(logits, targets, 0.0, loss, lse32), Error);
  const Tensor empty_vocab = Tensor::empty({n, 0}, DType::F64);
  EXPECT_THROW(cross_entropy_forward(empty_vocab, targets, 0.0, loss, lse), Error);
  const Tensor int_logits = Tensor::zeros({n, vocab}, DType::I32);
  Tensor loss_i = Tensor::zeros({n}, DType::I32), lse_i = Tensor::zeros({n}, DType::I32);
  EXPECT_THROW(cross_entropy_forward(int_logits, targets, 0.0, loss_i, lse_i), Error);

  Tensor bad_targets = targets.clone();
  bad_targets.data<std::int32_t>()[3] = static_cast<std::int32_t>(vocab);
  try {
    cross_entropy_forward(logits, bad_targets, 0.0, loss, lse);
    FAIL() << "expected quopt::Error for a target out of range";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cross_entropy_forward"), std::string::npos) << msg;
    EXPECT_NE(msg.find("targets[3] = 6"), std::string::npos) << msg;
  }

  Tensor dlogits = Tensor::empty({n, vocab}, DType::F64), d_bad = Tensor::empty({n, vocab + 1}, DType::F64);
  EXPECT_NO_THROW(cross_entropy_backward(logits, targets, lse, 0.0, 1.0, dlogits));
  EXPECT_THROW(cross_entropy_backward(logits, targets, lse, 0.0, 1.0, d_bad), Error);
  EXPECT_THROW(cross_entropy_backward(logits, bad_targets, lse, 0.0, 1.0, dlogits), Error);
  EXPECT_THROW(cross_entropy_backward(logits, targets, loss_short, 0.0, 1.0, dlogits), Error);
  Tensor d32 = Tensor::empty({n, vocab}, DType::F32);
  EXPECT_THROW(cross_entropy_backward(logits, targets, lse, 0.0, 1.0, d32), Error);
}

}  // namespace
}  // namespace quopt
