#pragma once
// CUDA softmax cross-entropy on device pointers (contracts as in kernels/host/cross_entropy.hpp);
// targets validated by the caller (a target >= vocab gives a NaN loss). The forward returns the summed
// loss to the host (waits for the stream).
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
double cross_entropy_forward(const T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                             double z_loss_coef, T* loss, T* lse);
template <class T>
void cross_entropy_backward(const T* logits, const std::int32_t* targets, const T* lse, std::int64_t n,
                            std::int64_t vocab, double z_loss_coef, double dscale, T* dlogits);

}  // namespace quopt::kernels::cuda
