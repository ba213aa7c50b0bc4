#pragma once
// Host (Kokkos + OpenBLAS) causal attention with grouped KV heads, flash-attention style: the
// forward saves only the row logsumexp, the backward recomputes the probabilities from q, k and lse.
// Layouts (contiguous, row-major): q, out, dout, dq [B, T, H, D]; k, v, dk, dv [B, T, Hkv, D];
// lse [B, H, T]. Instantiated for float and double.
#include <cstdint>

namespace quopt::kernels::host {

struct AttentionDims {
  std::int64_t batch = 0;     // B
  std::int64_t seq = 0;       // T
  std::int64_t heads = 0;     // H (query heads)
  std::int64_t kv_heads = 0;  // Hkv (H % Hkv == 0; head h reads kv head h / (H / Hkv))
  std::int64_t head_dim = 0;  // D
};

// out = softmax(q k^T / sqrt(D) + causal mask) v per head; lse = logsumexp of each masked score row.
template <class T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, T* out, T* lse);

// dq, dk, dv written (dk, dv summed over the query heads that share a kv head).
template <class T>
void attention_backward(const AttentionDims& d, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, T* dq, T* dk, T* dv);

}  // namespace quopt::kernels::host
