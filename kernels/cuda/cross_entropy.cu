// CUDA softmax cross-entropy with z-loss (twin of kernels/host/cross_entropy.cpp). The forward reads
// each logits row once (one block per row, an online max / rescaled sum per thread combined over the
// block) and writes only the per-token loss and lse: the softmax is never stored. The backward writes
// the gradient in place of the logits from the saved lse. The fused classifier's row pass does both in
// one kernel per block of rows. The total loss is a fixed-order fp64 sum.
#include <cmath>
#include <cuda/std/limits>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cross_entropy.hpp"

namespace quopt::kernels::cuda {

namespace {

// exp of a shifted logit in the working precision, as the host does (float exp for fp32).
template <class T>
__device__ inline double exp_shifted(double shifted) {
  return static_cast<double>(exp(static_cast<T>(shifted)));
}

// logsumexp of the row x[0, vocab) over the block (every thread gets it): one read, an online max and
// rescaled sum per thread, combined over the block in a fixed order. Synchronises the block.
template <class T>
__device__ double row_logsumexp(const T* x, std::int64_t vocab, double* scratch) {
  const double neg_inf = -::cuda::std::numeric_limits<double>::infinity();
  double m = neg_inf, s = 0.0;
  for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const double v = static_cast<double>(x[j]);
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s += exp_shifted<T>(v - m);
    }
  }
  const double mx = block_max(m, scratch, neg_inf);
  s = m == neg_inf ? 0.0 : s * exp(m - mx);
  s = block_sum(s, scratch);
  return mx + log(s);
}

// Row i's lse, loss (lse - x_t + z lse^2; 0 when ignored) and its fp64 copy for the total; xt = x[t].
template <class T>
__device__ void store_row_loss(std::int64_t i, std::int32_t t, std::int64_t vocab, double l, double xt, double z,
                               T* loss, T* lse, double* row_loss) {
  lse[i] = static_cast<T>(l);
  double li = 0.0;
  if (t >= vocab)
    li = ::cuda::std::numeric_limits<double>::quiet_NaN();  // rejected on the host before upload; NaN if one slips by
  else if (t >= 0)
    li = l - xt + z * l * l;
  loss[i] = static_cast<T>(li);
  row_loss[i] = li;
}

// dx = dscale * d(loss)/d(logits) of one row from its fp64 lse l: dscale (p_j (1 + 2 z l) - [j == t]),
// p_j = exp(x_j - l); 0 for an ignored token (t < 0). dx may be x: each element is read and written by the
// same thread.
template <class T>
__device__ void write_row_gradient(const T* x, T* dx, std::int64_t vocab, std::int32_t t, double l, double z,
                                   double dscale) {
  if (t < 0) {
    for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) dx[j] = T(0);
    return;
  }
  // d/dx_j [lse - x_t + z lse^2] = p_j (1 + 2 z lse) - [j == t]  (z-loss: PaLM, Chowdhery et al. 2022).
  const double c = dscale * (1.0 + 2.0 * z * l);
  for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const double g = c * exp_shifted<T>(static_cast<double>(x[j]) - l);
    dx[j] = static_cast<T>(j == t ? g - dscale : g);
  }
}

template <class T>
__global__ void ce_forward_kernel(const T* logits, const std::int32_t* targets, std::int64_t vocab, double z,
                                  T* loss, T* lse, double* row_loss) {
  __shared__ double scratch[32];
  const std::int64_t i = blockIdx.x;
  const T* x = logits + i * vocab;
  const double l = row_logsumexp(x, vocab, scratch);
  if (threadIdx.x != 0) return;
  const std::int32_t t = targets[i];
  store_row_loss(i, t, vocab, l, t >= 0 && t < vocab ? static_cast<double>(x[t]) : 0.0, z, loss, lse, row_loss);
}

// The fused classifier's row pass: ce_forward_kernel, then the gradient dscale * d(loss)/d(logits) written
// in place of the logits (0 rows for ignored tokens). Every thread reads the target's logit before the
// block's first reduction, hence before any thread overwrites it; afterwards each element is read and
// written by the same thread.
template <class T>
__global__ void ce_forward_backward_kernel(T* logits, const std::int32_t* targets, std::int64_t vocab, double z,
                                           double dscale, T* loss, T* lse, double* row_loss) {
  __shared__ double scratch[32];
  const std::int64_t i = blockIdx.x;
  T* x = logits + i * vocab;
  const std::int32_t t = targets[i];
  const double xt = t >= 0 && t < vocab ? static_cast<double>(x[t]) : 0.0;
  const double l = row_logsumexp(x, vocab, scratch);
  if (threadIdx.x == 0) store_row_loss(i, t, vocab, l, xt, z, loss, lse, row_loss);
  write_row_gradient(x, x, vocab, t, l, z, dscale);  // from the fp64 lse, as the host's fused pass
}

__global__ void sum_rows_kernel(const double* rows, std::int64_t n, double* out) {
  __shared__ double scratch[32];
  double acc = 0.0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += rows[i];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) *out = acc;
}

template <class T>
__global__ void ce_backward_kernel(const T* logits, const std::int32_t* targets, const T* lse, std::int64_t vocab,
                                   double z, double dscale, T* dlogits) {
  const std::int64_t i = blockIdx.x;
  write_row_gradient(logits + i * vocab, dlogits + i * vocab, vocab, targets[i], static_cast<double>(lse[i]), z,
                     dscale);
}

}  // namespace

template <class T>
void cross_entropy_forward_rows(const T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                                double z_loss_coef, T* loss, T* lse, double* row_loss) {
  if (n == 0) return;
  ce_forward_kernel<T><<<static_cast<unsigned>(n), kBlock, 0, stream()>>>(logits, targets, vocab, z_loss_coef,
                                                                          loss, lse, row_loss);
  check_launch("cross_entropy_forward kernel");
}

template <class T>
void cross_entropy_forward_backward_rows(T* logits, const std::int32_t* targets, std::int64_t n,
                                         std::int64_t vocab, double z_loss_coef, double dscale, T* loss, T* lse,
                                         double* row_loss) {
  if (n == 0) return;
  ce_forward_backward_kernel<T><<<static_cast<unsigned>(n), kBlock, 0, stream()>>>(
      logits, targets, vocab, z_loss_coef, dscale, loss, lse, row_loss);
  check_launch("cross_entropy_forward_backward kernel");
}

double sum_row_losses(const double* row_loss, std::int64_t n) {
  if (n == 0) return 0.0;
  double* sum = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&sum), sizeof(double), stream()), "cudaMallocAsync (cross_entropy)");
  sum_rows_kernel<<<1, 1024, 0, stream()>>>(row_loss, n, sum);
  check_launch("cross_entropy sum kernel");
  double total = 0.0;
  check(cudaMemcpyAsync(&total, sum, sizeof(double), cudaMemcpyDeviceToHost, stream()),
        "cudaMemcpyAsync (cross_entropy)");
  check(cudaFreeAsync(sum, stream()), "cudaFreeAsync (cross_entropy)");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (cross_entropy)");
  return total;
}

template <class T>
double cross_entropy_forward(const T* logits, const std::int32_t* targets, std::int64_t n, std::int64_t vocab,
                             double z_loss_coef, T* loss, T* lse) {
  if (n == 0) return 0.0;
  double* rows = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&rows), sizeof(double) * n, stream()),
        "cudaMallocAsync (cross_entropy)");
  cross_entropy_forward_rows(logits, targets, n, vocab, z_loss_coef, loss, lse, rows);
  const double total = sum_row_losses(rows, n);
  check(cudaFreeAsync(rows, stream()), "cudaFreeAsync (cross_entropy)");
  return total;
}

template <class T>
void cross_entropy_backward(const T* logits, const std::int32_t* targets, const T* lse, std::int64_t n,
                            std::int64_t vocab, double z_loss_coef, double dscale, T* dlogits) {
  if (n == 0) return;
  ce_backward_kernel<T><<<static_cast<unsigned>(n), kBlock, 0, stream()>>>(logits, targets, lse, vocab,
                                                                           z_loss_coef, dscale, dlogits);
  check_launch("cross_entropy_backward kernel");
}

#define QUOPT_INSTANTIATE(T)                                                                                  \
  template double cross_entropy_forward<T>(const T*, const std::int32_t*, std::int64_t, std::int64_t, double, \
                                           T*, T*);                                                           \
  template void cross_entropy_backward<T>(const T*, const std::int32_t*, const T*, std::int64_t, std::int64_t, \
                                          double, double, T*);                                                 \
  template void cross_entropy_forward_rows<T>(const T*, const std::int32_t*, std::int64_t, std::int64_t, double, \
                                              T*, T*, double*);                                                 \
  template void cross_entropy_forward_backward_rows<T>(T*, const std::int32_t*, std::int64_t, std::int64_t,     \
                                                       double, double, T*, T*, double*);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::cuda
