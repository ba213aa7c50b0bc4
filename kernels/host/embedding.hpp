#pragma once
// Host token embedding lookup and its gradient; T = float or double.
#include <cstdint>

namespace quopt::kernels::host {

// Index of the first token outside [0, vocab), or -1 when all are valid (serial; call before the kernels,
// which assume valid tokens).
std::int64_t first_bad_token(const std::int32_t* tokens, std::int64_t n, std::int64_t vocab);

// out[i, :] = table[tokens[i], :]; table [vocab, c], out [n, c].
template <class T>
void embedding_forward(const std::int32_t* tokens, std::int64_t n, const T* table, std::int64_t c, T* out);

// dtable[tokens[i], :] += dout[i, :]. Parallel over column chunks, tokens in order inside each chunk, so
// every element's sum has a fixed order whatever the thread count (deterministic, race-free).
template <class T>
void embedding_backward(const std::int32_t* tokens, std::int64_t n, const T* dout, std::int64_t c, T* dtable);

}  // namespace quopt::kernels::host
