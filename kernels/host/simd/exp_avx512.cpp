// 512-bit SLEEF expf (AVX-512F code); compiled with -mavx512f, called only on such CPUs.
#include <immintrin.h>
#include <sleef.h>

#include "kernels/host/simd/exp_x86.hpp"

namespace quopt::kernels::host::simd {

void exp_avx512(const float* x, float* y, std::int64_t n, float shift) {
  const auto s = _mm512_set1_ps(shift);
  for (std::int64_t j = 0; j < n; j += 16) _mm512_storeu_ps(y + j, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + j), s)));
}

}  // namespace quopt::kernels::host::simd
