// GPTQ: the blocked implementation (LAPACK, lazy batch updates) against a plain fp64 column-by-column
// implementation of the same algorithm written here; lower layer-output error than RTN on correlated
// inputs; the result lies on the RTN grid; the Hessian accumulator; argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"
#include "kernels/quant_ops.hpp"
#include "quant/gptq.hpp"

namespace quopt {
namespace {

using testing::expect_error;
using testing::randn;

using Mat = std::vector<std::vector<double>>;

Mat to_mat(const Tensor& t, std::int64_t r, std::int64_t c) {
  Mat m(static_cast<std::size_t>(r), std::vector<double>(static_cast<std::size_t>(c)));
  for (std::int64_t i = 0; i < r; ++i)
    for (std::int64_t j = 0; j < c; ++j)
      m[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = t.item(i * c + j);
  return m;
}

// Lower Cholesky factor of a symmetric positive definite matrix (a = L L^T).
Mat cholesky_lower(const Mat& a) {
  const std::size_t n = a.size();
  Mat l(n, std::vector<double>(n, 0.0));
  for (std::size_t j = 0; j < n; ++j) {
    double d = a[j][j];
    for (std::size_t k = 0; k < j; ++k) d -= l[j][k] * l[j][k];
    l[j][j] = std::sqrt(d);
    for (std::size_t i = j + 1; i < n; ++i) {
      double s = a[i][j];
      for (std::size_t k = 0; k < j; ++k) s -= l[i][k] * l[j][k];
      l[i][j] = s / l[j][j];
    }
  }
  return l;
}

// Inverse by Gauss-Jordan elimination with partial pivoting.
Mat inverse(Mat a) {
  const std::size_t n = a.size();
  Mat inv(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) inv[i][i] = 1.0;
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::fabs(a[r][c]) > std::fabs(a[p][c])) p = r;
    std::swap(a[c], a[p]);
    std::swap(inv[c], inv[p]);
    const double d = a[c][c];
    for (std::size_t j = 0; j < n; ++j) {
      a[c][j] /= d;
      inv[c][j] /= d;
    }
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r][c];
      for (std::size_t j = 0; j < n; ++j) {
        a[r][j] -= f * a[c][j];
        inv[r][j] -= f * inv[c][j];
      }
    }
  }
  return inv;
}

struct Plain {
  Mat q;
  Mat scales;
  double loss = 0;
};

// GPTQ as in the paper / reference, one column at a time with immediate updates of all later columns.
// The only trace of blocking: a group's scale is taken from W as it was at the start of the block that
// contains the group's first column (the reference reads its not yet block-updated W there).
Plain plain_gptq(Mat w, const Mat& x, int bits, std::int64_t group, std::int64_t block, double percdamp,
                 bool act_order) {
  const std::size_t m = w.size(), n = w[0].size(), t = x.size();
  const double maxc = (1 << (bits - 1)) - 1;
  Mat h(n, std::vector<double>(n, 0.0));
  for (std::size_t s = 0; s < t; ++s)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) h[i][j] += 2.0 / static_cast<double>(t) * x[s][i] * x[s][j];
  Plain res;
  std::vector<double> row_scale(m);
  for (std::size_t r = 0; r < m; ++r) {
    double amax = 0;
    for (double v : w[r]) amax = std::max(amax, std::fabs(v));
    row_scale[r] = amax > 0 ? amax / maxc : 1.0;
  }
  for (std::size_t j = 0; j < n; ++j)
    if (h[j][j] == 0.0) {
      h[j][j] = 1.0;
      for (auto& row : w) row[j] = 0.0;
    }
  std::vector<std::size_t> perm(n);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](auto a, auto b) { return h[a][a] > h[b][b]; });
  Mat hp(n, std::vector<double>(n)), wp(m, std::vector<double>(n));
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) hp[i][j] = h[perm[i]][perm[j]];
    mean += hp[i][i] / static_cast<double>(n);
  }
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t j = 0; j < n; ++j) wp[r][j] = w[r][perm[j]];
  for (std::size_t i = 0; i < n; ++i) hp[i][i] += percdamp * mean;
  // Upper Cholesky factor U of H^-1 (H^-1 = U^T U) is the transpose of its lower factor.
  const Mat l = cholesky_lower(inverse(hp));
  Mat qp(m, std::vector<double>(n, 0.0));
  res.scales.assign(m, std::vector<double>(group > 0 ? n / static_cast<std::size_t>(group) : 1));
  std::vector<double> cur = row_scale;
  for (std::size_t r = 0; r < m; ++r) res.scales[r][0] = row_scale[r];
  Mat snapshot = wp;
  for (std::size_t col = 0; col < n; ++col) {
    if (col % static_cast<std::size_t>(block) == 0) snapshot = wp;
    for (std::size_t r = 0; r < m; ++r) {
      if (group > 0 && col % static_cast<std::size_t>(group) == 0) {
        double amax = 0;
        for (std::size_t k = col; k < col + static_cast<std::size_t>(group); ++k)
          amax = std::max(amax, std::fabs(snapshot[r][k]));
        cur[r] = amax > 0 ? amax / maxc : 1.0;
        res.scales[r][col / static_cast<std::size_t>(group)] = cur[r];
      }
      const double wv = wp[r][col];
      const double q = std::clamp(std::nearbyint(wv / cur[r]), -maxc, maxc) * cur[r];
      qp[r][col] = q;
      const double d = l[col][col];  // U[col][col]
      const double e = (wv - q) / d;
      res.loss += e * e / 2;
      for (std::size_t j = col + 1; j < n; ++j) wp[r][j] -= e * l[j][col];  // U[col][j] = L[j][col]
    }
  }
  res.q.assign(m, std::vector<double>(n));
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t j = 0; j < n; ++j) res.q[r][perm[j]] = qp[r][j];
  return res;
}

struct Case {
  std::int64_t group;
  bool act_order;
  bool dead;
};

TEST(Gptq, MatchesAPlainFp64Implementation) {
  const std::int64_t out = 8, in = 16, tokens = 64, block = 4;
  Tensor w = randn({out, in}, 60, DType::F64, 0.5);
  Tensor z = randn({tokens, in}, 61), mix = randn({in, in}, 62);
  Tensor x = Tensor::empty({tokens, in}, DType::F64);
  kernels::matmul(z, false, mix, false, x);  // correlated inputs
  for (Case c : {Case{0, false, false}, Case{0, true, false}, Case{4, false, false}, Case{8, false, false},
                 Case{8, true, false}, Case{2, false, false}, Case{0, false, true}, Case{4, true, true}}) {
    Tensor xc = x.clone();
    if (c.dead)
      for (std::int64_t s = 0; s < tokens; ++s) {
        xc.data<double>()[s * in + 5] = 0.0;  // inputs 5 and 11 never fire: dead columns
        xc.data<double>()[s * in + 11] = 0.0;
      }
    GptqOptions opt;
    opt.bits = 3;
    opt.group_size = c.group;
    opt.block_size = block;
    opt.act_order = c.act_order;
    const GptqResult got = gptq_quantize_calibrated(w, xc, opt);
    const Plain want =
        plain_gptq(to_mat(w, out, in), to_mat(xc, tokens, in), 3, c.group, block, 0.01, c.act_order);
    const std::string what = cat("group ", c.group, " act_order ", c.act_order, " dead ", c.dead);
    ASSERT_EQ(got.weight.shape(), (Shape{out, in})) << what;
    for (std::int64_t r = 0; r < out; ++r)
      for (std::int64_t j = 0; j < in; ++j)
        EXPECT_NEAR(got.weight.item(r * in + j),
                    want.q[static_cast<std::size_t>(r)][static_cast<std::size_t>(j)], 1e-10)
            << what << " at (" << r << ", " << j << ")";
    const std::int64_t ng = c.group > 0 ? in / c.group : 1;
    ASSERT_EQ(got.scales.numel(), out * ng) << what;
    for (std::int64_t r = 0; r < out; ++r)
      for (std::int64_t k = 0; k < ng; ++k)
        EXPECT_NEAR(got.scales.item(r * ng + k),
                    want.scales[static_cast<std::size_t>(r)][static_cast<std::size_t>(k)], 1e-12)
            << what;
    EXPECT_NEAR(got.loss, want.loss, 1e-9 * std::max(1.0, want.loss)) << what;
    if (c.dead)
      for (std::int64_t r = 0; r < out; ++r) {
        EXPECT_EQ(got.weight.item(r * in + 5), 0.0);
        EXPECT_EQ(got.weight.item(r * in + 11), 0.0);
      }
  }
}

// ||X W^T - X Q^T||_F.
double output_error(const Tensor& x, const Tensor& w, const Tensor& q) {
  Tensor y = Tensor::empty({x.dim(0), w.dim(0)}, DType::F64),
         yq = Tensor::empty({x.dim(0), w.dim(0)}, DType::F64);
  kernels::matmul(x, false, w, true, y);
  kernels::matmul(x, false, q, true, yq);
  double s = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) s += (y.item(i) - yq.item(i)) * (y.item(i) - yq.item(i));
  return std::sqrt(s);
}

TEST(Gptq, LowerLayerOutputErrorThanRtnOnCorrelatedInputs) {
  const std::int64_t out = 32, in = 64, tokens = 512;
  Tensor w = randn({out, in}, 63, DType::F64, 0.02);
  Tensor z = randn({tokens, in}, 64), mix = randn({in, in}, 65);
  Tensor x = Tensor::empty({tokens, in}, DType::F64);
  kernels::matmul(z, false, mix, false, x);
  for (std::int64_t g : {std::int64_t{0}, std::int64_t{16}}) {
    Tensor rtn = Tensor::empty({out, in}, DType::F64),
           s = Tensor::empty({out * (g > 0 ? in / g : 1)}, DType::F64);
    kernels::rtn_quantize(w, 4, g, rtn, s);
    const double e_rtn = output_error(x, w, rtn);
    for (bool act_order : {false, true}) {
      GptqOptions opt;
      opt.group_size = g;
      opt.act_order = act_order;
      opt.block_size = 16;  // four blocks
      const GptqResult res = gptq_quantize_calibrated(w, x, opt);
      const double e_gptq = output_error(x, w, res.weight);
      EXPECT_LT(e_gptq, 0.8 * e_rtn) << "group " << g << " act_order " << act_order << ": GPTQ " << e_gptq
                                     << " vs RTN " << e_rtn;
      if (g == 0) {
        // Same per-row scales as RTN, and every value on the grid of its row.
        for (std::int64_t r = 0; r < out; ++r) {
          EXPECT_NEAR(res.scales.item(r), s.item(r), 1e-15);
          for (std::int64_t j = 0; j < in; ++j) {
            const double code = res.weight.item(r * in + j) / s.item(r);
            EXPECT_NEAR(code, std::round(code), 1e-9);
            EXPECT_LE(std::fabs(code), 7.0 + 1e-9);
          }
        }
      }
    }
  }
}

TEST(Gptq, HessianAccumulatesLikeOneBatchAndF32Works) {
  const std::int64_t in = 12, t1 = 10, t2 = 22;
  Tensor x1 = randn({t1, in}, 66), x2 = randn({t2, in}, 67);
  Tensor all = Tensor::empty({t1 + t2, in}, DType::F64);
  all.slice(0, t1).copy_from(x1);
  all.slice(t1, t1 + t2).copy_from(x2);
  GptqHessian h(in);
  h.add_batch(x1);
  h.add_batch(x2.astype(DType::F32).astype(DType::F64));
  EXPECT_EQ(h.tokens(), t1 + t2);
  for (std::int64_t i = 0; i < in; ++i)
    for (std::int64_t j = 0; j < in; ++j) {
      double want = 0;
      for (std::int64_t s = 0; s < t1 + t2; ++s) {
        const double a = s < t1 ? x1.item(s * in + i)
                                : static_cast<double>(static_cast<float>(x2.item((s - t1) * in + i)));
        const double b = s < t1 ? x1.item(s * in + j)
                                : static_cast<double>(static_cast<float>(x2.item((s - t1) * in + j)));
        want += 2.0 / static_cast<double>(t1 + t2) * a * b;
      }
      EXPECT_NEAR(h.matrix().item(i * in + j), want, 1e-12 * std::max(1.0, std::fabs(want)));
    }
  // f32 weights and inputs: f32 result close to the f64 one.
  Tensor w = randn({6, in}, 68, DType::F64, 0.1);
  GptqOptions opt;
  opt.block_size = 5;
  const GptqResult r64 = gptq_quantize_calibrated(w, all, opt);
  const GptqResult r32 = gptq_quantize_calibrated(w.astype(DType::F32), all.astype(DType::F32), opt);
  EXPECT_EQ(r32.weight.dtype(), DType::F32);
  EXPECT_EQ(r32.scales.dtype(), DType::F32);
  std::int64_t differ = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i)
    differ += std::fabs(r32.weight.item(i) - r64.weight.item(i)) > 1e-6 ? 1 : 0;
  EXPECT_LE(differ, 2) << "f32 inputs should round to the same grid points except near ties";
}

TEST(Gptq, ArgumentErrorsNameTheProblem) {
  Tensor w = randn({4, 12}, 69), x = randn({20, 12}, 70);
  GptqOptions opt;
  opt.group_size = 5;
  expect_error([&] { gptq_quantize_calibrated(w, x, opt); },
               {"group_size = 5", "does not divide in_features = 12"});
  opt = GptqOptions{};
  opt.bits = 1;
  expect_error([&] { gptq_quantize_calibrated(w, x, opt); }, {"bits = 1", "2..8"});
  opt = GptqOptions{};
  opt.block_size = 0;
  expect_error([&] { gptq_quantize_calibrated(w, x, opt); }, {"block_size = 0"});
  opt = GptqOptions{};
  opt.percdamp = -0.1;
  expect_error([&] { gptq_quantize_calibrated(w, x, opt); }, {"percdamp = -0.1"});
  Tensor x_bad = randn({20, 10}, 71);
  expect_error([&] { gptq_quantize_calibrated(w, x_bad, GptqOptions{}); }, {"in_features"});
  Tensor h_bad = Tensor::zeros({10, 10}, DType::F64);
  expect_error([&] { gptq_quantize(w, h_bad, GptqOptions{}); }, {"h is", "expected [12, 12]"});
  // An indefinite matrix (not a Hessian of real inputs) cannot be factorised even after damping.
  Tensor h_neg = Tensor::zeros({12, 12}, DType::F64);
  for (std::int64_t i = 0; i < 12; ++i) h_neg.data<double>()[i * 12 + i] = i == 3 ? -5.0 : 1.0;
  expect_error([&] { gptq_quantize(w, h_neg, GptqOptions{}); }, {"not positive definite", "percdamp"});
}

}  // namespace
}  // namespace quopt
