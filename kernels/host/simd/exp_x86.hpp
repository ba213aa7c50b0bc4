#pragma once
// The x86 vector exp kernels of kernels/host/vec_exp.cpp, one per file so each is compiled with its
// own target flags (kernels/CMakeLists.txt): y[j] = exp(x[j] - shift) for n a multiple of the width.
#include <cstdint>

namespace quopt::kernels::host::simd {

void exp_sse(const float* x, float* y, std::int64_t n, float shift);     // 4 floats; SSE2 baseline
void exp_avx2(const float* x, float* y, std::int64_t n, float shift);    // 8 floats; needs AVX2 + FMA
void exp_avx512(const float* x, float* y, std::int64_t n, float shift);  // 16 floats; needs AVX-512F

}  // namespace quopt::kernels::host::simd
