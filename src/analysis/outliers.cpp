#include "analysis/outliers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace quopt {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// x on the host, f32 or f64, with at least min_dims dimensions.
Tensor host_view(const Tensor& x, int min_dims, const char* what) {
  QUOPT_CHECK(x.defined(), what, ": the tensor is undefined");
  QUOPT_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, what, " takes an f32 or f64 tensor, got ",
              x.describe());
  QUOPT_CHECK(x.ndim() >= min_dims, what, " takes a [rows, features] tensor, got ", x.describe());
  return x.is_host() ? x : x.to(Device::Host);
}

// Calls f(const T* data) with the tensor's element type.
template <class F>
void visit(const Tensor& t, F&& f) {
  if (t.dtype() == DType::F32)
    f(t.data<float>());
  else
    f(t.data<double>());
}

}  // namespace

// ---- row ratios -------------------------------------------------------------------------------------------

double RowRatioStats::value() const {
  return rows > 0 ? sum / static_cast<double>(rows) : kNaN;
}

void RowRatioStats::merge(const RowRatioStats& o) {
  sum += o.sum;
  rows += o.rows;
  skipped += o.skipped;
}

void accumulate_mmr(const Tensor& x_in, MmrDenominator den, RowRatioStats& s) {
  const Tensor x = host_view(x_in, 2, "MMR");
  const std::int64_t C = x.dim(-1);
  const std::int64_t N = C > 0 ? x.numel() / C : 0;
  if (C == 0) return;  // rows without features: nothing to measure
  std::vector<double> buf(static_cast<std::size_t>(C));
  visit(x, [&](const auto* p) {
    for (std::int64_t t = 0; t < N; ++t) {
      const auto* row = p + t * C;
      double mx = 0.0, sum = 0.0;
      for (std::int64_t j = 0; j < C; ++j) {
        const double a = std::fabs(static_cast<double>(row[j]));
        buf[static_cast<std::size_t>(j)] = a;
        mx = std::max(mx, a);
        sum += a;
      }
      if (!std::isfinite(sum)) {  // NaN or Inf in the row: no meaningful ratio (and no order to sort by)
        ++s.skipped;
        continue;
      }
      double d = 0.0;
      if (den == MmrDenominator::Mean) {
        d = sum / static_cast<double>(C);
      } else {
        // Median; for an even count the mean of the two middle values (numpy.median; torch.median
        // would take the lower one).
        const auto k = static_cast<std::size_t>(C / 2);
        std::nth_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k), buf.end());
        d = buf[k];
        if (C % 2 == 0)
          d = 0.5 * (d + *std::max_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k)));
      }
      if (d > 0.0 && std::isfinite(d)) {
        s.sum += mx / d;
        ++s.rows;
      } else {
        ++s.skipped;
      }
    }
  });
}

// ---- moments ----------------------------------------------------------------------------------------------

void MomentStats::add(const Tensor& x_in) {
  const Tensor x = host_view(x_in, 0, "kurtosis");
  const std::int64_t n = x.numel();
  if (n == 0) return;
  MomentStats c;
  visit(x, [&](const auto* p) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(p[i]);
    const double mean = sum / static_cast<double>(n);
    double s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(p[i]) - mean;
      const double d2 = d * d;
      s1 += d;
      s2 += d2;
      s3 += d2 * d;
      s4 += d2 * d2;
    }
    // s1 is the rounding error of the mean; folding it in is the corrected two-pass algorithm
    // (Chan, Golub & LeVeque 1983) for M2; M3 and M4 are insensitive to it at this order.
    const double corr = s1 / static_cast<double>(n);
    c.n_ = static_cast<double>(n);
    c.mean_ = mean + corr;
    c.m2_ = s2 - s1 * corr;
    c.m3_ = s3;
    c.m4_ = s4;
  });
  merge(c);
}

void MomentStats::merge(const MomentStats& o) {
  if (o.n_ == 0.0) return;
  if (n_ == 0.0) {
    *this = o;
    return;
  }
  const double na = n_, nb = o.n_, n = na + nb;
  const double d = o.mean_ - mean_, dn = d / n;
  const double m2 = m2_ + o.m2_ + d * dn * na * nb;
  const double m3 = m3_ + o.m3_ + d * dn * dn * na * nb * (na - nb) + 3.0 * dn * (na * o.m2_ - nb * m2_);
  const double m4 = m4_ + o.m4_ + d * dn * dn * dn * na * nb * (na * na - na * nb + nb * nb) +
                    6.0 * dn * dn * (na * na * o.m2_ + nb * nb * m2_) + 4.0 * dn * (na * o.m3_ - nb * m3_);
  n_ = n;
  mean_ += dn * nb;
  m2_ = m2;
  m3_ = m3;
  m4_ = m4;
}

double MomentStats::variance() const {
  return n_ > 0.0 ? m2_ / n_ : kNaN;
}

double MomentStats::kurtosis() const {
  if (n_ == 0.0 || !(m2_ > 0.0)) return kNaN;
  return n_ * m4_ / (m2_ * m2_);
}

MomentStats MomentStats::unpack(const std::array<double, 5>& v) {
  MomentStats s;
  s.n_ = v[0];
  s.mean_ = v[1];
  s.m2_ = v[2];
  s.m3_ = v[3];
  s.m4_ = v[4];
  return s;
}

double pearson_kurtosis(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  Tensor t = Tensor::empty({static_cast<std::int64_t>(v.size())}, DType::F64);
  std::copy(v.begin(), v.end(), t.data<double>());
  MomentStats s;
  s.add(t);
  return s.kurtosis();
}

// ---- per-feature RMS --------------------------------------------------------------------------------------

void ColumnSquares::add(const Tensor& x_in) {
  const Tensor x = host_view(x_in, 2, "per-feature RMS");
  const std::int64_t C = x.dim(-1);
  const std::int64_t N = C > 0 ? x.numel() / C : 0;
  if (rows == 0 && sumsq.empty()) sumsq.assign(static_cast<std::size_t>(C), 0.0);
  QUOPT_CHECK(static_cast<std::int64_t>(sumsq.size()) == C, "per-feature RMS: a chunk of ", C,
              " features added to statistics of ", sumsq.size(), " features");
  visit(x, [&](const auto* p) {
    for (std::int64_t t = 0; t < N; ++t)
      for (std::int64_t j = 0; j < C; ++j) {
        const double v = static_cast<double>(p[t * C + j]);
        sumsq[static_cast<std::size_t>(j)] += v * v;
      }
  });
  rows += N;
}

void ColumnSquares::merge(const ColumnSquares& o) {
  if (o.rows == 0 && o.sumsq.empty()) return;
  if (rows == 0 && sumsq.empty()) {
    *this = o;
    return;
  }
  QUOPT_CHECK(sumsq.size() == o.sumsq.size(), "per-feature RMS: cannot merge statistics of ", o.sumsq.size(),
              " features into ", sumsq.size());
  for (std::size_t j = 0; j < sumsq.size(); ++j) sumsq[j] += o.sumsq[j];
  rows += o.rows;
}

std::vector<double> ColumnSquares::rms() const {
  std::vector<double> r(sumsq.size(), kNaN);
  if (rows == 0) return r;
  for (std::size_t j = 0; j < r.size(); ++j) r[j] = std::sqrt(sumsq[j] / static_cast<double>(rows));
  return r;
}

double ColumnSquares::rms_kurtosis() const {
  return rows == 0 ? kNaN : pearson_kurtosis(rms());
}

// ---- all of them ------------------------------------------------------------------------------------------

void ActivationStats::add(const Tensor& x) {
  accumulate_mmr(x, MmrDenominator::Median, mmr_median);
  accumulate_mmr(x, MmrDenominator::Mean, mmr_mean);
  moments.add(x);
  columns.add(x);
}

void ActivationStats::merge(const ActivationStats& o) {
  mmr_median.merge(o.mmr_median);
  mmr_mean.merge(o.mmr_mean);
  moments.merge(o.moments);
  columns.merge(o.columns);
}

double mmr_median(const Tensor& x) {
  RowRatioStats s;
  accumulate_mmr(x, MmrDenominator::Median, s);
  return s.value();
}

double mmr_mean(const Tensor& x) {
  RowRatioStats s;
  accumulate_mmr(x, MmrDenominator::Mean, s);
  return s.value();
}

double kurtosis(const Tensor& x) {
  MomentStats s;
  s.add(x);
  return s.kurtosis();
}

double rms_kurtosis(const Tensor& x) {
  ColumnSquares s;
  s.add(x);
  return s.rms_kurtosis();
}

}  // namespace quopt
