#pragma once
// Host softmax cross-entropy with optional z-loss over the last dimension of logits [N, V].
// Per-row max and sum are computed in double; results are independent of the thread count.
// Instantiated for float and double.
#include <cstdint>

namespace quopt::kernels::host {

// Writes lse[i] for every row and loss[i] = lse - logits[i, t] + z * lse^2 (0 where t < 0);
// targets must already be validated (t < V). Returns the sum of loss over counted rows, summed in
// row order in double.
template <class T>
double cross_entropy_forward(const T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                             double z_loss_coef, T* loss, T* lse);

// dlogits[i, :] = dscale * (softmax_i * (1 + 2 z lse_i) - onehot(t_i)), 0 rows where t_i < 0.
// dlogits may be the same buffer as logits.
template <class T>
void cross_entropy_backward(const T* logits, const std::int32_t* targets, const T* lse, std::int64_t n,
                            std::int64_t vocab, double z_loss_coef, double dscale, T* dlogits);

// Forward and backward of a block of rows in one pass (the fused classifier, kernels/ops.hpp): writes
// lse, loss and per-row losses as cross_entropy_forward, and turns logits in place into
// dlogits = dscale * (softmax * (1 + 2 z lse) - onehot(t)) (0 rows where t < 0). exp runs once per
// element: softmax_j = e_j / sum(e) with e_j = exp(x_j - max). Returns the sum of loss over counted
// rows, summed in row order in double.
template <class T>
double cross_entropy_forward_backward(T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                                      double z_loss_coef, double dscale, T* loss, T* lse);

}  // namespace quopt::kernels::host
