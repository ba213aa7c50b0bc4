#pragma once
// Host MLP activations over n contiguous elements; T = float or double.
#include <cstdint>

namespace quopt::kernels::host {

// y = max(x, 0)^2.
template <class T>
void relu2_forward(const T* x, T* y, std::int64_t n);
// dx = dy * 2 max(x, 0).
template <class T>
void relu2_backward(const T* dy, const T* x, T* dx, std::int64_t n);
// y = silu(gate) * up with silu(g) = g * sigmoid(g).
template <class T>
void swiglu_forward(const T* gate, const T* up, T* y, std::int64_t n);
// dgate = dy * up * sigmoid(g) (1 + g (1 - sigmoid(g))), dup = dy * silu(g).
template <class T>
void swiglu_backward(const T* dy, const T* gate, const T* up, T* dgate, T* dup, std::int64_t n);

}  // namespace quopt::kernels::host
