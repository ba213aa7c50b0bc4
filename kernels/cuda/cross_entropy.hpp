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

// The fused classifier's row passes over one block of rows (kernels/classifier_cross_entropy.cpp), queued
// without waiting: loss and lse as cross_entropy_forward, each row's loss also in fp64 into row_loss[n]
// (device memory) for one sum_row_losses after the last block. The _backward form also turns logits in
// place into dlogits (host twin: cross_entropy_forward_backward).
template <class T>
void cross_entropy_forward_rows(const T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                                double z_loss_coef, T* loss, T* lse, double* row_loss);
template <class T>
void cross_entropy_forward_backward_rows(T* logits, const std::int32_t* targets, std::int64_t n,
                                         std::int64_t vocab, double z_loss_coef, double dscale, T* loss, T* lse,
                                         double* row_loss);
// Sum of row_loss[0, n) in a fixed order, returned to the host (waits for the stream).
double sum_row_losses(const double* row_loss, std::int64_t n);

}  // namespace quopt::kernels::cuda
