// Fused classifier + cross-entropy (kernels::classifier_cross_entropy): equal to the unfused chain
// (matmul, cross_entropy_forward/backward, the two backward matmuls) for every block height, ignored
// targets and z-loss; its gradients by finite differences; dw accumulated; the loss-only form; f32
// against f64; argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/tensor.hpp"
#include "kernels/ops.hpp"
#include "support/gradcheck.hpp"

namespace quopt {
namespace {

namespace k = kernels;
using testing::randn;

// Random targets in [0, V), every 5th ignored (-1).
Tensor make_targets(std::int64_t n, std::int64_t vocab, std::uint64_t seed) {
  Tensor t = Tensor::empty({n}, DType::I32);
  Rng rng(seed, 3);
  for (std::int64_t i = 0; i < n; ++i)
    t.data<std::int32_t>()[i] = i % 5 == 4 ? -1 : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

struct Result {
  Tensor loss, lse, dx, dw;
  double total = 0.0;
};

// The unfused chain: full logits, then the separate ops.
Result unfused(const Tensor& x, const Tensor& w, const Tensor& tg, double z, double dscale, const Tensor& dw0) {
  const std::int64_t n = x.dim(0), vocab = w.dim(0);
  const DType dt = x.dtype();
  Result r{Tensor::empty({n}, dt), Tensor::empty({n}, dt), Tensor::empty(x.shape(), dt), dw0.clone()};
  Tensor logits = Tensor::empty({n, vocab}, dt);
  k::matmul(x, false, w, true, logits);
  r.total = k::cross_entropy_forward(logits, tg, z, r.loss, r.lse);
  k::cross_entropy_backward(logits, tg, r.lse, z, dscale, logits);
  k::matmul(logits, false, w, false, r.dx);
  k::matmul(logits, true, x, false, r.dw, 1.0, 1.0);
  return r;
}

Result fused(const Tensor& x, const Tensor& w, const Tensor& tg, double z, double dscale, const Tensor& dw0,
             std::int64_t rows) {
  const std::int64_t n = x.dim(0), vocab = w.dim(0);
  const DType dt = x.dtype();
  Result r{Tensor::empty({n}, dt), Tensor::empty({n}, dt), Tensor::empty(x.shape(), dt), dw0.clone()};
  Tensor work = Tensor::empty({rows, vocab}, dt);
  r.total = k::classifier_cross_entropy(x, w, tg, z, dscale, r.loss, r.lse, r.dx, r.dw, work);
  return r;
}

double max_rel(const Tensor& a, const Tensor& b) {
  double m = 0.0;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::fabs(a.item(i) - b.item(i)) / std::max(1e-3, std::fabs(b.item(i))));
  return m;
}

TEST(ClassifierCrossEntropy, EqualsTheUnfusedChainForEveryBlockHeight) {
  const std::int64_t n = 23, c = 12, vocab = 37;
  const Tensor x = randn({n, c}, 1), w = randn({vocab, c}, 2, DType::F64, 0.5), dw0 = randn({vocab, c}, 3);
  const Tensor tg = make_targets(n, vocab, 4);
  const double z = 1e-2, dscale = 1.0 / 19.0;
  const Result ref = unfused(x, w, tg, z, dscale, dw0);
  for (std::int64_t rows : {1, 4, 7, 23, 64}) {
    SCOPED_TRACE("rows = " + std::to_string(rows));
    const Result got = fused(x, w, tg, z, dscale, dw0, rows);
    EXPECT_NEAR(got.total, ref.total, 1e-12 * std::fabs(ref.total));
    EXPECT_LE(max_rel(got.loss, ref.loss), 1e-12);
    EXPECT_LE(max_rel(got.lse, ref.lse), 1e-12);
    EXPECT_LE(max_rel(got.dx, ref.dx), 1e-10);
    EXPECT_LE(max_rel(got.dw, ref.dw), 1e-10);
    for (std::int64_t i = 4; i < n; i += 5) {  // ignored tokens: no loss, no gradient
      EXPECT_EQ(got.loss.item(i), 0.0);
      for (std::int64_t j = 0; j < c; ++j) EXPECT_EQ(got.dx.item(i * c + j), 0.0);
    }
  }
}

TEST(ClassifierCrossEntropy, GradientsMatchFiniteDifferences) {
  const std::int64_t n = 9, c = 6, vocab = 11;
  Tensor x = randn({n, c}, 5), w = randn({vocab, c}, 6, DType::F64, 0.7);
  const Tensor tg = make_targets(n, vocab, 7);
  const double z = 5e-2, dscale = 0.3;
  const Tensor dw0 = Tensor::zeros({vocab, c}, DType::F64);
  const Result r = fused(x, w, tg, z, dscale, dw0, 4);
  auto objective = [&] {
    Tensor loss = Tensor::empty({n}, DType::F64), lse = Tensor::empty({n}, DType::F64), none;
    Tensor work = Tensor::empty({4, vocab}, DType::F64);
    return dscale * k::classifier_cross_entropy(x, w, tg, z, 0.0, loss, lse, none, none, work);
  };
  testing::expect_gradient("dx", x, r.dx, objective, 1e-6);
  testing::expect_gradient("dw", w, r.dw, objective, 1e-6);
}

TEST(ClassifierCrossEntropy, LossOnlyFormGivesTheSameLosses) {
  const std::int64_t n = 17, c = 8, vocab = 29;
  const Tensor x = randn({n, c}, 8), w = randn({vocab, c}, 9), tg = make_targets(n, vocab, 10);
  const Result g = fused(x, w, tg, 1e-4, 0.1, Tensor::zeros({vocab, c}, DType::F64), 5);
  Tensor loss = Tensor::empty({n}, DType::F64), lse = Tensor::empty({n}, DType::F64), none;
  Tensor work = Tensor::empty({5, vocab}, DType::F64);
  const double total = k::classifier_cross_entropy(x, w, tg, 1e-4, 0.1, loss, lse, none, none, work);
  EXPECT_EQ(total, g.total);
  for (std::int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(loss.item(i), g.loss.item(i));
    EXPECT_EQ(lse.item(i), g.lse.item(i));
  }
}

TEST(ClassifierCrossEntropy, Float32AgreesWithFloat64) {
  const std::int64_t n = 70, c = 32, vocab = 300;  // rows over several blocks, vocab beyond one vector tail
  const Tensor x = randn({n, c}, 11), w = randn({vocab, c}, 12, DType::F64, 0.3), tg = make_targets(n, vocab, 13);
  const Tensor dw0 = Tensor::zeros({vocab, c}, DType::F64);
  const Result r64 = fused(x, w, tg, 1e-4, 1.0 / n, dw0, 32);
  const Result r32 = fused(x.astype(DType::F32), w.astype(DType::F32), tg, 1e-4, 1.0 / n, dw0.astype(DType::F32), 32);
  EXPECT_NEAR(r32.total, r64.total, 1e-5 * std::fabs(r64.total));
  EXPECT_LE(max_rel(r32.lse, r64.lse), 1e-5);
  EXPECT_LE(max_rel(r32.dx, r64.dx), 1e-3);
  EXPECT_LE(max_rel(r32.dw, r64.dw), 1e-3);
}

TEST(ClassifierCrossEntropy, RejectsBadArguments) {
  const std::int64_t n = 4, c = 3, vocab = 5;
  const Tensor x = randn({n, c}, 14), w = randn({vocab, c}, 15);
  Tensor tg = make_targets(n, vocab, 16);
  Tensor loss = Tensor::empty({n}, DType::F64), lse = Tensor::empty({n}, DType::F64);
  Tensor dx = Tensor::empty({n, c}, DType::F64), dw = Tensor::zeros({vocab, c}, DType::F64), none;
  Tensor work = Tensor::empty({2, vocab}, DType::F64), bad_work = Tensor::empty({2, vocab + 1}, DType::F64);
  EXPECT_THROW(k::classifier_cross_entropy(x, w, tg, 0.0, 1.0, loss, lse, dx, none, work), Error);
  EXPECT_THROW(k::classifier_cross_entropy(x, w, tg, 0.0, 1.0, loss, lse, dx, dw, bad_work), Error);
  EXPECT_THROW(k::classifier_cross_entropy(x, w.astype(DType::F32), tg, 0.0, 1.0, loss, lse, dx, dw, work), Error);
  tg.data<std::int32_t>()[2] = static_cast<std::int32_t>(vocab);
  try {
    k::classifier_cross_entropy(x, w, tg, 0.0, 1.0, loss, lse, dx, dw, work);
    FAIL() << "a target >= V was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("targets[2] = 5"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quopt
