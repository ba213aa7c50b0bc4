#pragma once
// CUDA quantization kernels on device pointers (contracts as in kernels/host/quant.hpp); T = float or
// double. hadamard_transform: blocks of at most 48 KiB (12288 floats).
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void rtn_quantize(const T* x, std::int64_t n, std::int64_t c, std::int64_t g, int bits, T* xq, T* scales);
template <class T>
void hadamard_transform(const T* x, std::int64_t n, std::int64_t c, std::int64_t block, T* y);
template <class T>
void quest_quantize(const T* x, std::int64_t n, std::int64_t c, int bits, double alpha, double trust, T* xq,
                    T* mask, T* scales);
template <class T>
void apply_mask(T* g, const T* m, std::int64_t count);

}  // namespace quopt::kernels::cuda
