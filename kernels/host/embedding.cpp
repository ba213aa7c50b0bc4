#include "kernels/host/embedding.hpp"

#include <algorithm>

#include "kernels/host/host_policy.hpp"

namespace quopt::kernels::host {

std::int64_t first_bad_token(const std::int32_t* tokens, std::int64_t n, std::int64_t vocab) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) return i;
  }
  return -1;
}

template <class T>
void embedding_forward(const std::int32_t* tokens, std::int64_t n, const T* table, std::int64_t c, T* out) {
  host_for("quopt::host::embedding_forward", n, [=](const std::int64_t i) {
    const T* src = table + static_cast<std::int64_t>(tokens[i]) * c;
    std::copy(src, src + c, out + i * c);
  }, c);
}

template <class T>
void embedding_backward(const std::int32_t* tokens, std::int64_t n, const T* dout, std::int64_t c,
                        T* dtable) {
  const std::int64_t chunks = (c + kColumnChunk - 1) / kColumnChunk;
  host_for("quopt::host::embedding_backward", chunks,
                       [=](const std::int64_t chunk) {
                         const std::int64_t j0 = chunk * kColumnChunk;
                         const std::int64_t j1 = std::min(c, j0 + kColumnChunk);
                         for (std::int64_t i = 0; i < n; ++i) {
                           T* dst = dtable + static_cast<std::int64_t>(tokens[i]) * c;
                           const T* src = dout + i * c;
                           for (std::int64_t j = j0; j < j1; ++j) dst[j] += src[j];
                         }
                       }, n * kColumnChunk);
}

#define QUOPT_INSTANTIATE(T)                                                                         \
  template void embedding_forward<T>(const std::int32_t*, std::int64_t, const T*, std::int64_t, T*); \
  template void embedding_backward<T>(const std::int32_t*, std::int64_t, const T*, std::int64_t, T*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::host
