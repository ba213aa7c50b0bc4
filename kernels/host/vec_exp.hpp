#pragma once
// Vectorised exp for the softmax loops (attention, cross-entropy, the fused classifier): SLEEF's
// vector expf (Debian libsleef-dev, Spack sleef), maximum error 1.0 ulp (SLEEF's documented bound
// for the _u10 functions; tests/unit/test_kernels_vec_exp.cpp checks it against libm over the float
// range for every variant this CPU runs).
//
// The variant is chosen once, at first use, from the CPU: AVX-512F (Sleef_expf16_u10avx512f),
// AVX2 + FMA (Sleef_expf8_u10avx2), else 128-bit SSE (Sleef_expf4_u10, SLEEF's own dispatcher picks
// SSE2 or SSE4.1 code). The AVX2 and AVX-512 parts live in their own files compiled with those target
// flags (kernels/host/simd/), so the default build stays portable x86-64. Other CPUs, and a build
// without x86 (QUOPT_VEC_EXP_X86 off), use libm's expf element by element.
//
// Results never depend on the thread count. They can differ in the last bit between CPUs that run
// different variants (the AVX2 and AVX-512 code uses FMA), as OpenBLAS's GEMMs already do.
#include <cstdint>
#include <vector>

namespace quopt::kernels::host {

// y[j] = exp(x[j] - shift); n a multiple of `width`; y may be x.
using ExpKernel = void (*)(const float* x, float* y, std::int64_t n, float shift);

struct ExpVariant {
  const char* name;  // "avx512f", "avx2", "sse", "libm"
  int width;         // floats per call step
  ExpKernel kernel;
};

// The variants this CPU can run, fastest first (the first is the one in use).
const std::vector<ExpVariant>& exp_variants();
// The variant in use.
const ExpVariant& exp_variant();

// y[j] = exp(x[j] - shift) for j < n, with the given variant (default: the one in use); y may be x.
void exp_shifted(const float* x, float* y, std::int64_t n, float shift, const ExpVariant& v = exp_variant());
void exp_shifted(const double* x, double* y, std::int64_t n, double shift);

// sum_j exp(x[j] - shift), accumulated in double over kExpLanes interleaved partial sums (element j
// goes to partial j % kExpLanes, partials added in order at the end): the order is fixed whatever the
// vector width. Writes the exponentials to y when y is not null (y may be x).
inline constexpr std::int64_t kExpLanes = 8;
double exp_shifted_sum(const float* x, float* y, std::int64_t n, float shift,
                       const ExpVariant& v = exp_variant());
double exp_shifted_sum(const double* x, double* y, std::int64_t n, double shift);

}  // namespace quopt::kernels::host
