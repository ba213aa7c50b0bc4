// kernels/host/vec_exp.hpp: every exp variant this CPU runs (SLEEF's AVX-512, AVX2 and SSE code, and
// libm) against libm's double exp rounded to float over the float range, within the stated 1 ulp;
// the limits; and the shifted / summed loops: each element the same wherever it sits in a row, the sum
// in the fixed lane order whatever the variant's width.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/rng.hpp"
#include "kernels/host/vec_exp.hpp"

namespace quopt::kernels::host {
namespace {

float from_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
std::uint32_t to_bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

constexpr float kInf = std::numeric_limits<float>::infinity();
// exp(x) is a normal float for x in [kLo, kHi].
constexpr float kLo = -87.33654022f, kHi = 88.72283173f;

struct Worst {
  std::int64_t ulp = 0;
  float x = 0.0f;
};

// Max ulp distance from float(exp(double x)) over the floats whose bit patterns run from `from` to
// `to` with step `stride`, keeping those in [kLo, kHi]; evaluated in batches through exp_shifted.
Worst max_ulp(const ExpVariant& v, std::uint64_t from, std::uint64_t to, std::uint64_t stride) {
  Worst w;
  std::vector<float> x, y;
  auto flush = [&] {
    y.resize(x.size());
    exp_shifted(x.data(), y.data(), static_cast<std::int64_t>(x.size()), 0.0f, v);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float want = static_cast<float>(std::exp(static_cast<double>(x[i])));
      const std::int64_t d =
          std::llabs(static_cast<std::int64_t>(to_bits(y[i])) - static_cast<std::int64_t>(to_bits(want)));
      if (d > w.ulp) w = {d, x[i]};
    }
    x.clear();
  };
  for (std::uint64_t b = from; b <= to; b += stride) {
    const float f = from_bits(static_cast<std::uint32_t>(b));
    if (f >= kLo && f <= kHi) x.push_back(f);
    if (x.size() == 4096) flush();
  }
  flush();
  return w;
}

TEST(VecExp, VariantsIncludeLibmAndLeadWithTheOneInUse) {
  const auto& vs = exp_variants();
  ASSERT_FALSE(vs.empty());
  EXPECT_STREQ(vs.back().name, "libm");
  EXPECT_EQ(&exp_variant(), &vs.front());
  for (const auto& v : vs) EXPECT_EQ(16 % v.width, 0) << v.name;
}

TEST(VecExp, EveryVariantWithinOneUlpOfLibmOverTheFloatRange) {
  const std::uint32_t pos_end = to_bits(kHi), neg_end = to_bits(kLo);
  for (const auto& v : exp_variants()) {
    SCOPED_TRACE(v.name);
    // Every 127th float of each sign, then every float within 2^14 patterns of each limit and of 0.
    for (const auto& [from, to, stride] :
         {std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>{0u, pos_end, 127u},
          {0x80000000u, neg_end, 127u},
          {pos_end - 16384u, pos_end, 1u},
          {neg_end - 16384u, neg_end, 1u},
          {0u, 16384u, 1u},
          {0x80000000u, 0x80004000u, 1u}}) {
      const Worst w = max_ulp(v, from, to, stride);
      EXPECT_LE(w.ulp, 1) << "at x = " << w.x;
    }
  }
}

TEST(VecExp, LimitsAndSpecialValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {0.0f, -0.0f, std::nextafter(kHi, 1e3f), 1000.0f, kInf, -110.0f, -1000.0f,
                                -kInf, nan};
  for (const auto& v : exp_variants()) {
    SCOPED_TRACE(v.name);
    std::vector<float> y(x.size());
    exp_shifted(x.data(), y.data(), static_cast<std::int64_t>(x.size()), 0.0f, v);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], 1.0f);
    EXPECT_EQ(y[2], kInf);  // exp overflows float above 88.7228
    EXPECT_EQ(y[3], kInf);
    EXPECT_EQ(y[4], kInf);
    EXPECT_EQ(y[5], 0.0f);  // below the smallest subnormal
    EXPECT_EQ(y[6], 0.0f);
    EXPECT_EQ(y[7], 0.0f);
    EXPECT_TRUE(std::isnan(y[8]));
  }
}

// Below kLo the result is subnormal: within one subnormal step (2^-149) of libm's.
TEST(VecExp, SubnormalResultsWithinOneStep) {
  for (const auto& v : exp_variants()) {
    SCOPED_TRACE(v.name);
    std::vector<float> x, y;
    for (float f = -103.9f; f < kLo; f += 0.01f) x.push_back(f);
    y.resize(x.size());
    exp_shifted(x.data(), y.data(), static_cast<std::int64_t>(x.size()), 0.0f, v);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(static_cast<double>(x[i]));
      EXPECT_LE(std::fabs(static_cast<double>(y[i]) - want), std::ldexp(1.0, -149)) << "at x = " << x[i];
    }
  }
}

// Rows of many lengths (tails of every size): each element equals the exp of it alone, the shift is
// subtracted before exp, and the sum is the fixed 8-lane sum of those exponentials.
TEST(VecExp, ShiftedRowsAndLaneSums) {
  Rng rng(5, 1);
  for (const auto& v : exp_variants()) {
    SCOPED_TRACE(v.name);
    for (std::int64_t n : {1, 3, 7, 8, 15, 16, 17, 31, 100, 255, 256, 257, 1000, 4099}) {
      std::vector<float> x(static_cast<std::size_t>(n)), y(x.size()), z(x.size());
      for (auto& f : x) f = static_cast<float>(6.0 * rng.normal());
      const float shift = 2.5f;
      exp_shifted(x.data(), y.data(), n, shift, v);
      const double sum = exp_shifted_sum(x.data(), z.data(), n, shift, v);
      double lanes[kExpLanes] = {};
      for (std::int64_t j = 0; j < n; ++j) {
        const std::size_t i = static_cast<std::size_t>(j);
        float alone = 0.0f;
        const float xs = x[i] - shift;
        exp_shifted(&xs, &alone, 1, 0.0f, v);
        ASSERT_EQ(to_bits(y[i]), to_bits(alone)) << "n = " << n << ", j = " << j;
        ASSERT_EQ(to_bits(z[i]), to_bits(y[i])) << "n = " << n << ", j = " << j;
        lanes[j % kExpLanes] += static_cast<double>(y[i]);
      }
      double want = 0.0;
      for (double l : lanes) want += l;
      EXPECT_EQ(sum, want) << "n = " << n;
      EXPECT_EQ(exp_shifted_sum(x.data(), static_cast<float*>(nullptr), n, shift, v), want) << "n = " << n;
      exp_shifted(x.data(), x.data(), n, shift, v);  // in place
      for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(to_bits(x[i]), to_bits(y[i]));
    }
  }
}

}  // namespace
}  // namespace quopt::kernels::host
