#pragma once
// Host quantization kernels on rows [n, c]; T = float or double. Formulas in kernels/quant_ops.hpp.
#include <cstdint>

namespace quopt::kernels::host {

// Symmetric AbsMax RTN per group of g columns (g == c: per row); scales [n, c / g]. xq may equal x.
template <class T>
void rtn_quantize(const T* x, std::int64_t n, std::int64_t c, std::int64_t g, int bits, T* xq, T* scales);

// Orthonormal Sylvester Walsh-Hadamard transform of every block of `block` columns; y may equal x.
template <class T>
void hadamard_transform(const T* x, std::int64_t n, std::int64_t c, std::int64_t block, T* y);

// QuEST centered quantizer per row with scale alpha * rms + 1e-8 and trust mask |xq - x| <= trust * rms.
// xq may equal x; mask and scales may be nullptr (not written).
template <class T>
void quest_quantize(const T* x, std::int64_t n, std::int64_t c, int bits, double alpha, double trust, T* xq,
                    T* mask, T* scales);

// g[i] *= m[i].
template <class T>
void apply_mask(T* g, const T* m, std::int64_t count);

}  // namespace quopt::kernels::host
