// kernels/host/vec_exp.hpp: vec_expf against libm's exp in double, rounded to float, over the float
// range (every 61st float of the range and every float near its limits), within the stated 2 ulp;
// the limits (+inf above, +0 below, NaN) behave as documented.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

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

// Distance in units in the last place between two positive finite floats.
std::int64_t ulp_distance(float a, float b) {
  return std::llabs(static_cast<std::int64_t>(to_bits(a)) - static_cast<std::int64_t>(to_bits(b)));
}

constexpr float kLo = -87.3365448f, kHi = 88.7228317f;

// Max ulp error over the floats whose bit patterns run from `from` to `to` with step `stride`
// (one sign only), skipping those outside [kLo, kHi].
std::int64_t max_ulp(std::uint32_t from, std::uint32_t to, std::uint32_t stride, float* worst) {
  std::int64_t m = 0;
  for (std::uint64_t b = from; b <= to; b += stride) {
    const float x = from_bits(static_cast<std::uint32_t>(b));
    if (!(x >= kLo && x <= kHi)) continue;
    const float want = static_cast<float>(std::exp(static_cast<double>(x)));
    const std::int64_t d = ulp_distance(vec_expf(x), want);
    if (d > m) {
      m = d;
      *worst = x;
    }
  }
  return m;
}

TEST(VecExp, WithinTwoUlpOfLibmOverTheFloatRange) {
  float worst = 0.0f;
  const std::uint32_t pos_end = to_bits(kHi), neg_end = to_bits(kLo);
  EXPECT_LE(max_ulp(0u, pos_end, 61u, &worst), 2) << "at x = " << worst;
  EXPECT_LE(max_ulp(0x80000000u, neg_end, 61u, &worst), 2) << "at x = " << worst;
  // Every float within 2^16 bit patterns of each limit and of 0.
  EXPECT_LE(max_ulp(pos_end - 65536u, pos_end, 1u, &worst), 2) << "at x = " << worst;
  EXPECT_LE(max_ulp(neg_end - 65536u, neg_end, 1u, &worst), 2) << "at x = " << worst;
  EXPECT_LE(max_ulp(0u, 65536u, 1u, &worst), 2) << "at x = " << worst;
  EXPECT_LE(max_ulp(0x80000000u, 0x80010000u, 1u, &worst), 2) << "at x = " << worst;
}

TEST(VecExp, LimitsAndSpecialValues) {
  EXPECT_EQ(vec_expf(0.0f), 1.0f);
  EXPECT_EQ(vec_expf(-0.0f), 1.0f);
  EXPECT_EQ(vec_expf(std::nextafter(kHi, 100.0f)), std::numeric_limits<float>::infinity());
  EXPECT_EQ(vec_expf(1000.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(vec_expf(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(vec_expf(std::nextafter(kLo, -100.0f)), 0.0f);
  EXPECT_EQ(vec_expf(-1000.0f), 0.0f);
  EXPECT_EQ(vec_expf(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_TRUE(std::isnan(vec_expf(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_GE(vec_expf(kLo), std::numeric_limits<float>::min() * 0.999f);  // still about FLT_MIN at the limit
  EXPECT_LT(vec_expf(kHi), std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace quopt::kernels::host
