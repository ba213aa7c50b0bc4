#pragma once
// CUDA embedding forward/backward on device pointers (contracts as in kernels/ops.hpp); T = float or
// double. Token ids are validated by the caller; an id outside [0, vocab) gives NaN rows (forward) and
// is skipped (backward).
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void embedding_forward(const std::int32_t* tokens, std::int64_t n, std::int64_t vocab, const T* table,
                       std::int64_t c, T* out);
// dtable accumulated; bitwise equal to the host backend (same per-element order).
template <class T>
void embedding_backward(const std::int32_t* tokens, std::int64_t n, std::int64_t vocab, const T* dout,
                        std::int64_t c, T* dtable);

}  // namespace quopt::kernels::cuda
