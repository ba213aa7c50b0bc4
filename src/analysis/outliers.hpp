#pragma once
// Outlier metrics of activation and weight matrices (docs/analysis.md has the definitions and why there
// are two MMR variants). Every metric accumulates in fp64 and is mergeable, so a calibration batch can
// be processed in chunks (and on several ranks) with the same result up to rounding.
//
//   mmr_median(X) = mean over rows t of max_j |x_tj| / median_j |x_tj|   (the authors' code)
//   mmr_mean(X)   = mean over rows t of max_j |x_tj| / mean_j |x_tj|     (the abstract's "max-to-mean")
//   kurtosis(X)   = Pearson's (not excess) kurtosis m4 / m2^2 of all elements (population moments)
//   rms_kurtosis(X) = Pearson's kurtosis of the per-feature RMS over rows, a vector of `features` values
//
// X is [rows, features] (tokens x input features for activations, output x input features for a
// weight); a tensor with more dimensions is viewed as [numel / dim(-1), dim(-1)]. f32 or f64; a device
// tensor is copied to the host. A row whose denominator (median or mean of |x|) is 0, or that holds a
// NaN or Inf, has no ratio: it is skipped and counted in `skipped`.
#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

namespace quopt {

// Mean of a per-row ratio over the rows that have one.
struct RowRatioStats {
  double sum = 0.0;          // sum of the ratios of the counted rows
  std::int64_t rows = 0;     // rows with a ratio
  std::int64_t skipped = 0;  // rows whose denominator was 0
  double value() const;      // sum / rows; NaN when no row has a ratio
  void merge(const RowRatioStats& o);
};

enum class MmrDenominator { Median, Mean };
// Adds every row of x to s.
void accumulate_mmr(const Tensor& x, MmrDenominator den, RowRatioStats& s);

// Count, mean and central moment sums M2, M3, M4 of a stream of values; merging uses the pairwise
// update of Pebay (2008, "Formulas for robust, one-pass parallel computation of covariances and
// arbitrary-order statistical moments", eqs. 2.1-2.2), so chunks merge without the cancellation of raw
// power sums.
class MomentStats {
 public:
  void add(const Tensor& x);  // all elements of x (two passes over the chunk, then a merge)
  void merge(const MomentStats& o);
  std::int64_t count() const { return static_cast<std::int64_t>(n_); }
  double mean() const { return mean_; }
  double variance() const;  // population variance M2 / n; NaN when empty
  // Pearson kurtosis n M4 / M2^2 (3 for a Gaussian); NaN when empty or constant.
  double kurtosis() const;
  // {n, mean, M2, M3, M4} and back (for MPI).
  std::array<double, 5> pack() const { return {n_, mean_, m2_, m3_, m4_}; }
  static MomentStats unpack(const std::array<double, 5>& v);

 private:
  double n_ = 0.0, mean_ = 0.0, m2_ = 0.0, m3_ = 0.0, m4_ = 0.0;
};

// Per-feature sums of squares over rows (for rms_kurtosis).
struct ColumnSquares {
  std::vector<double> sumsq;  // [features]
  std::int64_t rows = 0;
  void add(const Tensor& x);
  void merge(const ColumnSquares& o);
  std::vector<double> rms() const;  // sqrt(sumsq / rows)
  double rms_kurtosis() const;      // Pearson kurtosis of rms(); NaN when empty or constant
};

// Everything the analysis records about one activation matrix, accumulated chunk by chunk.
struct ActivationStats {
  RowRatioStats mmr_median, mmr_mean;
  MomentStats moments;
  ColumnSquares columns;
  void add(const Tensor& x);
  void merge(const ActivationStats& o);
};

// One-shot forms.
double mmr_median(const Tensor& x);
double mmr_mean(const Tensor& x);
double kurtosis(const Tensor& x);
double rms_kurtosis(const Tensor& x);
// Pearson kurtosis of a vector of values.
double pearson_kurtosis(const std::vector<double>& v);

}  // namespace quopt
