#pragma once
// Internal to the CUDA backend (.cu files): float and double arithmetic with explicit round-to-nearest
// (__f*_rn / __d*_rn), which nvcc never contracts into a fused multiply-add. Kernels that promise the
// host loop's bits compute through these (the x86-64 host code uses no FMA).
#include <cuda_runtime.h>

namespace quopt::kernels::cuda {

__device__ inline float mul_rn(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ inline double mul_rn(double a, double b) {
  return __dmul_rn(a, b);
}
__device__ inline float add_rn(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ inline double add_rn(double a, double b) {
  return __dadd_rn(a, b);
}
__device__ inline float sub_rn(float a, float b) {
  return __fsub_rn(a, b);
}
__device__ inline double sub_rn(double a, double b) {
  return __dsub_rn(a, b);
}
__device__ inline float div_rn(float a, float b) {
  return __fdiv_rn(a, b);
}
__device__ inline double div_rn(double a, double b) {
  return __ddiv_rn(a, b);
}
__device__ inline float sqrt_rn(float a) {
  return __fsqrt_rn(a);
}
__device__ inline double sqrt_rn(double a) {
  return __dsqrt_rn(a);
}

}  // namespace quopt::kernels::cuda
