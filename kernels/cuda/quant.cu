// CUDA quantization kernels (twin of kernels/host/quant.cpp): RTN AbsMax per row or group, the
// block-diagonal Walsh-Hadamard transform and QuEST's Gaussian-scaled quantizer with its trust mask.
// Roundings are explicit (rint: round half to even; __d*_rn: no fused multiply-add), so the codes are
// the host's codes; the only difference is the order of the fp64 sum of squares in QuEST's RMS.
#include <cmath>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/quant.hpp"

namespace quopt::kernels::cuda {

namespace {

// Block maximum of non-negative values that skips NaNs (fmax), as the host's std::max accumulation does.
template <class T>
__device__ T block_absmax(T v, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int off = 16; off > 0; off >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, off));
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = lane < warps ? scratch[lane] : T(0);
  for (int off = 16; off > 0; off >>= 1) r = fmax(r, __shfl_xor_sync(0xffffffffu, r, off));
  return r;
}

template <class T>
__global__ void rtn_kernel(const T* x, std::int64_t tasks, std::int64_t g, int max_code, T* xq, T* scales) {
  __shared__ T scratch[32];
  for (std::int64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
    const T* xg = x + task * g;
    T* qg = xq + task * g;
    T amax = T(0);
    for (std::int64_t j = threadIdx.x; j < g; j += blockDim.x) amax = fmax(amax, fabs(xg[j]));
    amax = block_absmax(amax, scratch);
    // rtn_scale: absmax / (2^(b-1) - 1), or 1 for a zero (or underflowing) absmax.
    double s = static_cast<double>(amax) / static_cast<double>(max_code);
    s = s > 0.0 ? s : 1.0;
    const T st = static_cast<T>(s) > T(0) ? static_cast<T>(s) : T(1);
    const T m = static_cast<T>(max_code);
    __syncthreads();  // every thread has read its group before any thread writes it (xq may be x)
    for (std::int64_t j = threadIdx.x; j < g; j += blockDim.x) {
      const T v = fmin(fmax(xg[j] / st, -m), m);
      qg[j] = rint(v) * st;
    }
    if (threadIdx.x == 0) scales[task] = st;
    __syncthreads();
  }
}

template <class T>
__global__ void hadamard_kernel(const T* x, std::int64_t tasks, std::int64_t block, T norm, T* y) {
  extern __shared__ unsigned char smem_raw[];
  T* v = reinterpret_cast<T*>(smem_raw);
  for (std::int64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
    const T* xb = x + task * block;
    T* yb = y + task * block;
    for (std::int64_t j = threadIdx.x; j < block; j += blockDim.x) v[j] = xb[j];
    __syncthreads();
    // Sylvester butterflies, stage of half-width h: (lo, hi) -> (lo + hi, lo - hi), as on the host.
    for (std::int64_t h = 1; h < block; h *= 2) {
      for (std::int64_t p = threadIdx.x; p < block / 2; p += blockDim.x) {
        const std::int64_t lo = (p / h) * 2 * h + p % h, hi = lo + h;
        const T a = v[lo], b = v[hi];
        v[lo] = a + b;
        v[hi] = a - b;
      }
      __syncthreads();
    }
    for (std::int64_t j = threadIdx.x; j < block; j += blockDim.x) yb[j] = v[j] * norm;
    __syncthreads();
  }
}

template <class T>
__global__ void quest_kernel(const T* x, std::int64_t n, std::int64_t c, double levels, double alpha,
                             double trust, T* xq, T* mask, T* scales) {
  __shared__ double scratch[32];
  const double k_lo = -levels / 2.0 + 1.0, k_hi = levels / 2.0;
  for (std::int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const T* xi = x + i * c;
    T* qi = xq + i * c;
    double ss = 0.0;
    for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) ss += static_cast<double>(xi[j]) * xi[j];
    ss = block_sum(ss, scratch);
    const double rms = sqrt(ss / static_cast<double>(c));
    const double scale = __dadd_rn(__dmul_rn(alpha, rms), 1e-8);  // + 1e-8 as in the reference
    const double step = __ddiv_rn(2.0 * scale, levels - 1.0);
    const double tol = __dmul_rn(trust, rms);
    for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      const double v = static_cast<double>(xi[j]);
      const double clipped = fmin(fmax(v, -scale), scale);
      const double k = fmin(fmax(rint(__dadd_rn(__ddiv_rn(clipped, step), 0.5)), k_lo), k_hi);
      const T q = static_cast<T>(__dsub_rn(__dmul_rn(k, step), __dmul_rn(0.5, step)));
      if (mask != nullptr) mask[i * c + j] = fabs(static_cast<double>(q) - v) <= tol ? T(1) : T(0);
      qi[j] = q;  // after the mask: xq may alias x (each element read and written by one thread)
    }
    if (scales != nullptr && threadIdx.x == 0) scales[i] = static_cast<T>(scale);
  }
}

template <class T>
__global__ void apply_mask_kernel(T* g, const T* m, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) g[i] *= m[i];
}

unsigned blocks_for_tasks(std::int64_t tasks) {
  return static_cast<unsigned>(std::min<std::int64_t>(tasks, std::int64_t{1} << 20));
}

}  // namespace

template <class T>
void rtn_quantize(const T* x, std::int64_t n, std::int64_t c, std::int64_t g, int bits, T* xq, T* scales) {
  const std::int64_t tasks = n * (c / g);
  if (tasks == 0) return;
  rtn_kernel<T><<<blocks_for_tasks(tasks), kBlock, 0, stream()>>>(x, tasks, g, (1 << (bits - 1)) - 1, xq, scales);
  check_launch("rtn_quantize kernel");
}

template <class T>
void hadamard_transform(const T* x, std::int64_t n, std::int64_t c, std::int64_t block, T* y) {
  const std::int64_t tasks = n * (c / block);
  if (tasks == 0) return;
  const std::size_t smem = sizeof(T) * static_cast<std::size_t>(block);
  QUOPT_CHECK(smem <= 48 * 1024, "hadamard_transform (CUDA): a block of ", block,
              " entries does not fit the 48 KiB of shared memory of one thread block; use a block of at most ",
              48 * 1024 / sizeof(T), " (QuEST uses 128)");
  const int threads = static_cast<int>(std::clamp<std::int64_t>(block / 2, 32, 512));
  const T norm = static_cast<T>(1.0 / std::sqrt(static_cast<double>(block)));
  hadamard_kernel<T><<<blocks_for_tasks(tasks), threads, smem, stream()>>>(x, tasks, block, norm, y);
  check_launch("hadamard_transform kernel");
}

template <class T>
void quest_quantize(const T* x, std::int64_t n, std::int64_t c, int bits, double alpha, double trust, T* xq,
                    T* mask, T* scales) {
  if (n * c == 0) return;
  quest_kernel<T><<<blocks_for_tasks(n), kBlock, 0, stream()>>>(x, n, c, std::ldexp(1.0, bits), alpha, trust, xq,
                                                                mask, scales);
  check_launch("quest_quantize kernel");
}

template <class T>
void apply_mask(T* g, const T* m, std::int64_t count) {
  if (count == 0) return;
  apply_mask_kernel<T><<<grid_for(count), kBlock, 0, stream()>>>(g, m, count);
  check_launch("apply_mask kernel");
}

#define QUOPT_INSTANTIATE(T)                                                                              \
  template void rtn_quantize<T>(const T*, std::int64_t, std::int64_t, std::int64_t, int, T*, T*);         \
  template void hadamard_transform<T>(const T*, std::int64_t, std::int64_t, std::int64_t, T*);            \
  template void quest_quantize<T>(const T*, std::int64_t, std::int64_t, int, double, double, T*, T*, T*); \
  template void apply_mask<T>(T*, const T*, std::int64_t);
QUOPT_INSTANTIATE(float)
QUOPT_INSTANTIATE(double)
#undef QUOPT_INSTANTIATE

}  // namespace quopt::kernels::cuda
