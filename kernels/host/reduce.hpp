#pragma once
// Host reductions; T = float or double.
#include <cstdint>

namespace quopt::kernels::host {

// Elements per partial sum of sum_squares: partials are computed in parallel and combined in index
// order, so the result does not depend on the number of threads.
inline constexpr std::int64_t kReduceChunk = 8192;

// sum_i x[i]^2 in double with a fixed order.
template <class T>
double sum_squares(const T* x, std::int64_t n);

}  // namespace quopt::kernels::host
