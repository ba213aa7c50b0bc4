#pragma once
// CUDA causal attention with grouped KV heads on device pointers (contract of kernels/ops.hpp and
// kernels/host/attention.hpp); T = float or double; head_dim <= 256.
#include <cstdint>

namespace quopt::kernels::cuda {

struct AttentionShape {
  std::int64_t batch = 0, seq = 0, heads = 0, kv_heads = 0, head_dim = 0;
};

template <class T>
void attention_forward(const AttentionShape& s, const T* q, const T* k, const T* v, T* out, T* lse);
template <class T>
void attention_backward(const AttentionShape& s, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, T* dq, T* dk, T* dv);

}  // namespace quopt::kernels::cuda
