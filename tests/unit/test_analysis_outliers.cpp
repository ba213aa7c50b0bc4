// Outlier metrics (analysis/outliers.hpp) against values worked out by hand, sampling theory and
// chunk/merge invariances.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "analysis/outliers.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"

namespace quopt {
namespace {

Tensor matrix(std::int64_t rows, std::int64_t cols, const std::vector<double>& v, DType dt = DType::F32) {
  Tensor t = Tensor::empty({rows, cols}, DType::F64);
  EXPECT_EQ(static_cast<std::int64_t>(v.size()), rows * cols);
  std::copy(v.begin(), v.end(), t.data<double>());
  return dt == DType::F64 ? t : t.astype(dt);
}

Tensor gaussian(std::int64_t rows, std::int64_t cols, std::uint64_t seed, DType dt = DType::F64) {
  Tensor t = Tensor::empty({rows, cols}, DType::F64);
  Rng rng(seed, 1);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = rng.normal();
  return dt == DType::F64 ? t : t.astype(dt);
}

TEST(AnalysisOutliers, MmrOfConstructedRows) {
  // Row 0: |x| sorted 0 1 2 3 4 -> median 2, mean 2, max 4.
  // Row 1: |x| sorted 0 0 0 1 5 -> median 0: skipped by the median variant; mean 6/5, max 5.
  // Row 2: |x| = 1 1 1 10 1 -> median 1, mean 14/5, max 10.
  // Row 3: all zero -> skipped by both.
  const Tensor x = matrix(4, 5, {1,  -2, 3,  4,  0,  //
                                 0,  0,  5,  1,  0,  //
                                 -1, 1,  -1, 10, 1,  //
                                 0,  0,  0,  0,  0});
  RowRatioStats med, mean;
  accumulate_mmr(x, MmrDenominator::Median, med);
  accumulate_mmr(x, MmrDenominator::Mean, mean);
  EXPECT_EQ(med.rows, 2);
  EXPECT_EQ(med.skipped, 2);
  EXPECT_DOUBLE_EQ(med.value(), (4.0 / 2.0 + 10.0 / 1.0) / 2.0);
  EXPECT_EQ(mean.rows, 3);
  EXPECT_EQ(mean.skipped, 1);
  EXPECT_DOUBLE_EQ(mean.value(), (4.0 / 2.0 + 5.0 / 1.2 + 10.0 / 2.8) / 3.0);
  EXPECT_DOUBLE_EQ(mmr_median(x), med.value());
  EXPECT_DOUBLE_EQ(mmr_mean(x), mean.value());
}

// The ReLU^2 failure of the authors' max-to-median MMR (an mlp_down input: most features exactly 0): a
// token whose median |x| is tiny but positive has a ratio of ~1e9 and carries the mean over 256 tokens,
// while the max-to-mean variant is bounded by the feature count (max <= sum = C mean) and moves by at
// most C / tokens.
TEST(AnalysisOutliers, MaxToMeanStaysBoundedWhereMaxToMedianBlowsUp) {
  constexpr std::int64_t T = 256, C = 64;
  Rng rng(5, 2);
  std::vector<double> v(static_cast<std::size_t>(T * C), 0.0);
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t j = 0; j < C; ++j)  // ReLU^2 of a Gaussian pre-activation: ~half the features 0
      if (const double u = rng.normal(); u > 0 || j == 0)
        v[static_cast<std::size_t>(t * C + j)] = u * u + 1e-3;
  const Tensor typical = matrix(T, C, v, DType::F64);
  // One more token: 33 of 64 features active, 32 of them at 1e-9 (the median is 1e-9), one at 2.
  std::vector<double> odd(static_cast<std::size_t>(C), 0.0);
  for (std::int64_t j = 0; j < 32; ++j) odd[static_cast<std::size_t>(j)] = 1e-9;
  odd[32] = 2.0;
  std::vector<double> all = v;
  all.insert(all.end(), odd.begin(), odd.end());
  const Tensor with_odd = matrix(T + 1, C, all, DType::F64);

  const double med0 = mmr_median(typical), med1 = mmr_median(with_odd);
  const double mean0 = mmr_mean(typical), mean1 = mmr_mean(with_odd);
  EXPECT_GT(mmr_median(matrix(1, C, odd, DType::F64)), 1e9);  // that token alone
  EXPECT_GT(med1, 1e3 * med0) << "one token should dominate the max-to-median mean";
  EXPECT_LE(mmr_mean(matrix(1, C, odd, DType::F64)), static_cast<double>(C));  // bounded by C
  EXPECT_LT(std::fabs(mean1 - mean0), static_cast<double>(C) / T);
  // The bound holds for every row of sparse inputs.
  for (std::int64_t t = 0; t < T; ++t) EXPECT_LE(mmr_mean(typical.slice(t, t + 1)), static_cast<double>(C));
}

TEST(AnalysisOutliers, MedianOfEvenCountIsMeanOfMiddleValues) {
  // |x| = 4 1 3 2 (unsorted, signs mixed): median 2.5, max 4.
  const Tensor x = matrix(1, 4, {-4, 1, 3, -2}, DType::F64);
  EXPECT_DOUBLE_EQ(mmr_median(x), 4.0 / 2.5);
  // A constant row: ratio 1 for both variants.
  const Tensor c = matrix(2, 3, {7, -7, 7, 0.5, 0.5, -0.5});
  EXPECT_DOUBLE_EQ(mmr_median(c), 1.0);
  EXPECT_DOUBLE_EQ(mmr_mean(c), 1.0);
  // One outlier among n - 1 ones: median 1, mean (n - 1 + M) / n.
  const int n = 9;
  std::vector<double> v(n, 1.0);
  v[4] = -50.0;
  const Tensor o = matrix(1, n, v);
  EXPECT_DOUBLE_EQ(mmr_median(o), 50.0);
  EXPECT_NEAR(mmr_mean(o), 50.0 / ((n - 1 + 50.0) / n), 1e-12);
  // A row holding a NaN or Inf is skipped too.
  RowRatioStats nonfinite;
  accumulate_mmr(matrix(2, 2, {1, std::numeric_limits<double>::infinity(), 1, 3}, DType::F64),
                 MmrDenominator::Median, nonfinite);
  EXPECT_EQ(nonfinite.skipped, 1);
  EXPECT_DOUBLE_EQ(nonfinite.value(), 3.0 / 2.0);
  RowRatioStats none;
  accumulate_mmr(matrix(1, 2, {0, 0}), MmrDenominator::Median, none);
  EXPECT_TRUE(std::isnan(none.value()));
  EXPECT_EQ(none.skipped, 1);
}

TEST(AnalysisOutliers, KurtosisByHand) {
  // 1 2 3 4: mean 2.5, m2 = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25, m4 = (2 * 5.0625 + 2 * 0.0625) / 4
  // = 2.5625, Pearson kurtosis m4 / m2^2 = 1.64.
  EXPECT_NEAR(kurtosis(matrix(2, 2, {1, 2, 3, 4})), 2.5625 / 1.5625, 1e-14);
  // Two-point distribution +-a: kurtosis 1 (the minimum).
  EXPECT_NEAR(kurtosis(matrix(2, 3, {3, -3, 3, -3, 3, -3})), 1.0, 1e-14);
  // One value c among n - 1 zeros: mean c/n, m2 = c^2 (n-1)/n^2, m4 = c^4 (n-1)(n^2 - 3n + 3)/n^4,
  // kurtosis = (n^2 - 3n + 3) / (n - 1).
  const int n = 10;
  std::vector<double> v(n, 0.0);
  v[3] = 2.0;
  EXPECT_NEAR(kurtosis(matrix(2, 5, v)), (n * n - 3.0 * n + 3.0) / (n - 1.0), 1e-12);
  // Shift and scale invariance, and stability far from zero.
  const Tensor g = gaussian(50, 40, 3);
  Tensor s = g.clone();
  for (std::int64_t i = 0; i < s.numel(); ++i) s.data<double>()[i] = 1e5 + 0.25 * s.data<double>()[i];
  EXPECT_NEAR(kurtosis(s), kurtosis(g), 1e-8);
  EXPECT_TRUE(std::isnan(kurtosis(matrix(1, 3, {2, 2, 2}))));  // constant: undefined
}

TEST(AnalysisOutliers, KurtosisOfSamples) {
  // The sample kurtosis of n draws has standard error about sqrt(24 / n) for a Gaussian (about 0.011
  // here) and less for a uniform; the bounds are about 5 standard errors. Gaussian 3, uniform 9/5.
  const std::int64_t rows = 400, cols = 500;  // n = 2e5: sigma ~ 0.011 (Gaussian)
  EXPECT_NEAR(kurtosis(gaussian(rows, cols, 11, DType::F32)), 3.0, 0.055);
  Tensor u = Tensor::empty({rows, cols}, DType::F64);
  Rng rng(12, 2);
  for (std::int64_t i = 0; i < u.numel(); ++i) u.data<double>()[i] = 2.0 * rng.uniform() - 1.0;
  EXPECT_NEAR(kurtosis(u), 1.8, 0.01);
}

TEST(AnalysisOutliers, ChunkedMomentsMatchWhole) {
  const Tensor g = gaussian(64, 33, 5);
  Tensor h = g.clone();  // a heavier tail: cube the values
  for (std::int64_t i = 0; i < h.numel(); ++i) h.data<double>()[i] = std::pow(h.data<double>()[i], 3) + 0.5;
  MomentStats whole, parts;
  whole.add(h);
  const std::vector<std::int64_t> cuts = {0, 7, 8, 30, 64};  // uneven chunks, one of a single row
  for (std::size_t c = 0; c + 1 < cuts.size(); ++c) {
    MomentStats part;
    part.add(h.slice(cuts[c], cuts[c + 1]));
    parts.merge(part);
  }
  EXPECT_EQ(parts.count(), whole.count());
  EXPECT_NEAR(parts.mean(), whole.mean(), 1e-12);
  EXPECT_NEAR(parts.variance(), whole.variance(), 1e-11 * whole.variance());
  EXPECT_NEAR(parts.kurtosis(), whole.kurtosis(), 1e-10 * whole.kurtosis());
  // The cube of a Gaussian is heavy-tailed: population kurtosis E[Z^12] / E[Z^6]^2 = 10395 / 225 = 46.2.
  EXPECT_GT(whole.kurtosis(), 10.0);
  // Pack / unpack round trip.
  const MomentStats back = MomentStats::unpack(whole.pack());
  EXPECT_EQ(back.kurtosis(), whole.kurtosis());
}

TEST(AnalysisOutliers, RmsKurtosisOfKnownColumns) {
  // Column j alternates +-r_j, so its RMS over rows is exactly r_j; r = 1 2 3 4 has kurtosis 1.64.
  const std::vector<double> r = {1, 2, 3, 4};
  const std::int64_t rows = 6;
  std::vector<double> v;
  for (std::int64_t t = 0; t < rows; ++t)
    for (double rj : r) v.push_back(t % 2 ? rj : -rj);
  const Tensor x = matrix(rows, 4, v);
  ColumnSquares cs;
  cs.add(x.slice(0, 2));
  cs.add(x.slice(2, 6));
  const auto rms = cs.rms();
  ASSERT_EQ(rms.size(), 4u);
  for (std::size_t j = 0; j < 4; ++j) EXPECT_NEAR(rms[j], r[j], 1e-6);
  EXPECT_NEAR(rms_kurtosis(x), 1.64, 1e-6);
  EXPECT_NEAR(cs.rms_kurtosis(), 1.64, 1e-6);
  // One outlier channel among n - 1 equal ones: kurtosis is shift invariant, so the formula for one
  // nonzero value among n - 1 zeros applies: (n^2 - 3n + 3) / (n - 1).
  const int n = 8;
  Tensor y = Tensor::empty({300, n}, DType::F64);
  for (std::int64_t t = 0; t < 300; ++t) {
    for (int j = 0; j < n; ++j) y.data<double>()[t * n + j] = (t % 2 ? 1.0 : -1.0) * (j == 5 ? 40.0 : 1.0);
  }
  EXPECT_NEAR(rms_kurtosis(y), (n * n - 3.0 * n + 3.0) / (n - 1.0), 1e-10);
}

TEST(AnalysisOutliers, ActivationStatsMergeEqualsWhole) {
  const Tensor x = gaussian(40, 16, 21, DType::F32);
  ActivationStats whole, a, b;
  whole.add(x);
  a.add(x.slice(0, 13));
  b.add(x.slice(13, 40));
  a.merge(b);
  EXPECT_NEAR(a.mmr_median.value(), whole.mmr_median.value(), 1e-12);
  EXPECT_NEAR(a.mmr_mean.value(), whole.mmr_mean.value(), 1e-12);
  EXPECT_NEAR(a.moments.kurtosis(), whole.moments.kurtosis(), 1e-12);
  EXPECT_NEAR(a.columns.rms_kurtosis(), whole.columns.rms_kurtosis(), 1e-12);
  EXPECT_EQ(a.columns.rows, 40);
}

TEST(AnalysisOutliers, RejectsBadInput) {
  EXPECT_THROW(mmr_median(Tensor::zeros({5}, DType::F32)), Error);
  EXPECT_THROW(mmr_median(Tensor::zeros({2, 2}, DType::I32)), Error);
  ColumnSquares cs;
  cs.add(Tensor::zeros({2, 3}));
  EXPECT_THROW(cs.add(Tensor::zeros({2, 4})), Error);
}

}  // namespace
}  // namespace quopt
