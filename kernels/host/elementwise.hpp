#pragma once
// Host elementwise kernels over n contiguous elements; T = float or double.
#include <cstdint>

namespace quopt::kernels::host {

// out = a + b (out may alias a or b).
template <class T>
void add(const T* a, const T* b, T* out, std::int64_t n);
// y += alpha * x.
template <class T>
void axpy(double alpha, const T* x, T* y, std::int64_t n);
// x *= s.
template <class T>
void scale(T* x, double s, std::int64_t n);
// x = value.
template <class T>
void fill(T* x, double value, std::int64_t n);

}  // namespace quopt::kernels::host
