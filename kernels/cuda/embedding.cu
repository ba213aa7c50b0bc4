// CUDA embedding forward/backward (twin of kernels/host/embedding.cpp).
// Backward determinism: every element dtable[v, j] is owned by one thread, which adds the rows of dout
// of the tokens equal to v in token order, in T, exactly as the host loop does: the result is the same
// bits as the host backend's, from run to run, with no atomics. Threads are split over columns and over
// slices of the vocabulary (each thread skips the tokens outside its slice).
#include <cuda/std/limits>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/embedding.hpp"

namespace quopt::kernels::cuda {

namespace {

constexpr int kVocabSlices = 32;  // threads per column: enough blocks to fill an H100 at C >= 512

template <class T>
__global__ void embedding_forward_kernel(const std::int32_t* tokens, std::int64_t n, std::int64_t vocab,
                                         const T* table, std::int64_t c, T* out) {
  for (std::int64_t e = first_index(); e < n * c; e += grid_stride()) {
    const std::int64_t i = e / c, j = e % c;
    const std::int32_t t = tokens[i];
    // Out-of-range ids are rejected on the host before upload; a NaN makes any that slip through visible.
    out[e] = (t >= 0 && t < vocab) ? table[static_cast<std::int64_t>(t) * c + j]
                                   : ::cuda::std::numeric_limits<T>::quiet_NaN();
  }
}

template <class T>
__global__ void embedding_backward_kernel(const std::int32_t* tokens, std::int64_t n, std::int64_t vocab,
                                          const T* dout, std::int64_t c, T* dtable) {
  const std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (j >= c) return;
  const std::int64_t per = (vocab + kVocabSlices - 1) / kVocabSlices;
  const std::int64_t v0 = blockIdx.y * per, v1 = min(vocab, v0 + per);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t t = tokens[i];
    if (t >= v0 && t < v1) dtable[t * c + j] += dout[i * c + j];
  }
}

}  // namespace

template <class T>
void embedding_forward(const std::int32_t* tokens, std::int64_t n, std::int64_t vocab, const T* table,
                       std::int64_t c, T* out) {
  if (n * c == 0) return;
  embedding_forward_kernel<T><<<grid_for(n * c), kBlock, 0, stream()>>>(tokens, n, vocab, table, c, out);
  check_launch("embedding_forward kernel");
}

template <class T>
void embedding_backward(const std::int32_t* tokens, std::int64_t n, std::int64_t vocab, const T* dout,
                        std::int64_t c, T* dtable) {
  if (n * c == 0) return;
  const dim3 grid(static_cast<unsigned>((c + kBlock - 1) / kBlock), kVocabSlices);
  embedding_backward_kernel<T><<<grid, kBlock, 0, stream()>>>(tokens, n, vocab, dout, c, dtable);
  check_launch("embedding_backward kernel");
}

#define QUOPT_INSTANTIATE(T)                                                                                  \
  template void embedding_forward<T>(const std::int32_t*, std::int64_t, std::int64_t, const T*, std::int64_t, \
                                     T*);                                                                     \
  template void embedding_backward<T>(const std::int32_t*, std::int64_t, std::int64_t, const T*,              \
                                      std::int64_t, T*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::cuda
