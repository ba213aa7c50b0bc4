// 256-bit SLEEF expf (AVX2 + FMA code); compiled with -mavx2 -mfma, called only on such CPUs.
#include <immintrin.h>
#include <sleef.h>

#include "kernels/host/simd/exp_x86.hpp"

namespace quopt::kernels::host::simd {

void exp_avx2(const float* x, float* y, std::int64_t n, float shift) {
  const auto s = _mm256_set1_ps(shift);
  for (std::int64_t j = 0; j < n; j += 8) _mm256_storeu_ps(y + j, Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + j), s)));
}

}  // namespace quopt::kernels::host::simd
