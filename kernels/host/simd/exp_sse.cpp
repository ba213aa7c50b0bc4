// 128-bit SLEEF expf: Sleef_expf4_u10 is SLEEF's dispatcher between its SSE2 and SSE4.1 code.
#include <immintrin.h>
#include <sleef.h>

#include "kernels/host/simd/exp_x86.hpp"

namespace quopt::kernels::host::simd {

void exp_sse(const float* x, float* y, std::int64_t n, float shift) {
  const auto s = _mm_set1_ps(shift);
  for (std::int64_t j = 0; j < n; j += 4) _mm_storeu_ps(y + j, Sleef_expf4_u10(_mm_sub_ps(_mm_loadu_ps(x + j), s)));
}

}  // namespace quopt::kernels::host::simd
