#pragma once
// CUDA causal attention with grouped KV heads, device pointers; the same contract and signature as
// kernels/host/attention.hpp (q, out, dq [B, T, H, D]; k, v, dk, dv [B, T, Hkv, D]; lse [B, H, T]).
#include "kernels/host/attention.hpp"

namespace quopt::kernels::cuda {

using host::AttentionDims;

template <class T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, T* out, T* lse);
template <class T>
void attention_backward(const AttentionDims& d, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, T* dq, T* dk, T* dv);

}  // namespace quopt::kernels::cuda
