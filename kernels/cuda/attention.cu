// CUDA causal attention with grouped KV heads, flash-attention style (FlashAttention-2, Dao 2023):
// the forward streams key/value tiles through shared memory with an online softmax and saves only the
// row logsumexp; the backward recomputes the probabilities from q, k and lse. Twin of
// kernels/host/attention.cpp (same layouts: q, out [B, T, H, D]; k, v [B, T, Hkv, D]; lse [B, H, T]).
//
// Work split: one warp per query row (forward, dq) or per key row (dk, dv); kRows warps per block share
// the shared-memory tiles. Each lane owns the head dimensions d = lane + 32 r (D <= 32 * kMaxPerLane)
// for the accumulations and one key (or query) of a kBc-wide tile for the scores. dk and dv of a kv
// head are written by the one warp that owns the key row, looping over the query heads of its group
// in order: no atomics, so every result is the same bits from run to run.
#include <cmath>
#include <cuda/std/limits>

#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.cuh"

namespace quopt::kernels::cuda {

namespace {

constexpr int kRows = 8;        // warps (query or key rows) per block
constexpr int kBc = 32;         // keys (queries) per shared-memory tile: one per lane
constexpr int kMaxPerLane = 8;  // D <= 256

struct Dims {
  std::int64_t B, T, H, Hkv, D;
  // offsets of row t of (batch b, head h) in q-like and k-like tensors
  __device__ std::int64_t qrow(std::int64_t b, std::int64_t t, std::int64_t h) const {
    return ((b * T + t) * H + h) * D;
  }
  __device__ std::int64_t krow(std::int64_t b, std::int64_t t, std::int64_t g) const {
    return ((b * T + t) * Hkv + g) * D;
  }
};

// Loads rows [t0, t0 + n) (n <= kBc) of one head into a padded tile (row stride D + 1 keeps the
// per-lane row reads of the score loop on distinct banks); rows past T are zero.
template <class T>
__device__ void load_tile(T* tile, const T* src, std::int64_t row_stride, std::int64_t t0, std::int64_t T_,
                          std::int64_t D) {
  for (std::int64_t e = threadIdx.x; e < kBc * D; e += blockDim.x) {
    const std::int64_t r = e / D, d = e % D;
    tile[r * (D + 1) + d] = (t0 + r < T_) ? src[(t0 + r) * row_stride + d] : T(0);
  }
}

template <class T>
__device__ T dot_row(const T* a, const T* b, std::int64_t D) {
  T s = T(0);
  for (std::int64_t d = 0; d < D; ++d) s += a[d] * b[d];
  return s;
}

// The warp's query row: row i = i0 + warp of the block's kRows rows of (batch b, query head h), h reading
// kv head g. Rows past T are inactive (they still take part in the block's tile loads and barriers).
struct QueryRow {
  int warp, lane;
  std::int64_t b, h, g, i0, i;
  bool active;
  __device__ explicit QueryRow(const Dims& dm)
      : warp(static_cast<int>(threadIdx.x / 32)),
        lane(static_cast<int>(threadIdx.x % 32)),
        b(blockIdx.z),
        h(blockIdx.y),
        g(h / (dm.H / dm.Hkv)),
        i0(static_cast<std::int64_t>(blockIdx.x) * kRows),
        i(i0 + warp),
        active(i < dm.T) {}
  // Keys the block's rows attend to: 0 .. its last row.
  __device__ std::int64_t keys(const Dims& dm) const { return dm.T < i0 + kRows ? dm.T : i0 + kRows; }
};

// Loads keys/values [k0, k0 + kBc) of kv head g of batch b into the padded tiles ks and vs.
template <class T>
__device__ void load_kv_tiles(T* ks, T* vs, const T* k, const T* v, const Dims& dm, std::int64_t b,
                              std::int64_t g, std::int64_t k0) {
  const std::int64_t stride = dm.Hkv * dm.D;
  load_tile(ks, k + dm.krow(b, 0, g), stride, k0, dm.T, dm.D);
  load_tile(vs, v + dm.krow(b, 0, g), stride, k0, dm.T, dm.D);
}

template <class T>
__global__ void forward_kernel(Dims dm, T scale, const T* q, const T* k, const T* v, T* out, T* lse) {
  extern __shared__ unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const std::int64_t D = dm.D, ld = D + 1;
  T* qs = smem;                // [kRows][D]
  T* ks = qs + kRows * D;      // [kBc][D + 1]
  T* vs = ks + kBc * ld;       // [kBc][D + 1]
  const QueryRow row(dm);
  const int warp = row.warp, lane = row.lane;
  const std::int64_t b = row.b, h = row.h, g = row.g, i = row.i;
  const bool active = row.active;
  if (active)
    for (std::int64_t d = lane; d < D; d += 32) qs[warp * D + d] = q[dm.qrow(b, i, h) + d];
  const std::int64_t keys = row.keys(dm);
  const T neg_inf = -::cuda::std::numeric_limits<T>::infinity();
  T m_run = neg_inf, l_run = T(0);
  T acc[kMaxPerLane];
  for (int r = 0; r < kMaxPerLane; ++r) acc[r] = T(0);
  for (std::int64_t k0 = 0; k0 < keys; k0 += kBc) {
    __syncthreads();
    load_kv_tiles(ks, vs, k, v, dm, b, g, k0);
    __syncthreads();
    if (!active) continue;
    const std::int64_t key = k0 + lane;
    const T s = key <= i ? scale * dot_row(qs + warp * D, ks + lane * ld, D) : neg_inf;
    const T m_new = max(m_run, warp_max(s));
    const T alpha = exp(m_run - m_new);
    const T p = key <= i ? exp(s - m_new) : T(0);
    l_run = l_run * alpha + warp_sum(p);
    for (int r = 0; r < kMaxPerLane; ++r) acc[r] *= alpha;
    for (int jj = 0; jj < kBc; ++jj) {
      const T pj = __shfl_sync(0xffffffffu, p, jj);
      for (int r = 0; r < kMaxPerLane; ++r) {
        const std::int64_t d = lane + 32 * r;
        if (d < D) acc[r] += pj * vs[jj * ld + d];
      }
    }
    m_run = m_new;
  }
  if (!active) return;
  const T inv = T(1) / l_run;
  for (int r = 0; r < kMaxPerLane; ++r) {
    const std::int64_t d = lane + 32 * r;
    if (d < D) out[dm.qrow(b, i, h) + d] = acc[r] * inv;
  }
  if (lane == 0) lse[(b * dm.H + h) * dm.T + i] = m_run + log(l_run);
}

// dq of one query row per warp, and delta_i = rowsum(dO_i * O_i) (saved for the dk/dv kernel).
template <class T>
__global__ void backward_dq_kernel(Dims dm, T scale, const T* dout, const T* q, const T* k, const T* v,
                                   const T* out, const T* lse, T* dq, T* delta) {
  extern __shared__ unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const std::int64_t D = dm.D, ld = D + 1;
  T* qs = smem;               // [kRows][D]
  T* dos = qs + kRows * D;    // [kRows][D]
  T* ks = dos + kRows * D;    // [kBc][D + 1]
  T* vs = ks + kBc * ld;      // [kBc][D + 1]
  const QueryRow row(dm);
  const int warp = row.warp, lane = row.lane;
  const std::int64_t b = row.b, h = row.h, g = row.g, i = row.i;
  const bool active = row.active;
  T dl = T(0), li = T(0);
  if (active) {
    double part = 0.0;
    for (std::int64_t d = lane; d < D; d += 32) {
      const std::int64_t o = dm.qrow(b, i, h) + d;
      qs[warp * D + d] = q[o];
      dos[warp * D + d] = dout[o];
      part += static_cast<double>(dout[o]) * static_cast<double>(out[o]);
    }
    dl = static_cast<T>(warp_sum(part));
    li = lse[(b * dm.H + h) * dm.T + i];
    if (lane == 0) delta[(b * dm.H + h) * dm.T + i] = dl;
  }
  const std::int64_t keys = row.keys(dm);
  T acc[kMaxPerLane];
  for (int r = 0; r < kMaxPerLane; ++r) acc[r] = T(0);
  for (std::int64_t k0 = 0; k0 < keys; k0 += kBc) {
    __syncthreads();
    load_kv_tiles(ks, vs, k, v, dm, b, g, k0);
    __syncthreads();
    if (!active) continue;
    const std::int64_t key = k0 + lane;
    T ds = T(0);
    if (key <= i) {
      const T p = exp(scale * dot_row(qs + warp * D, ks + lane * ld, D) - li);
      const T dp = dot_row(dos + warp * D, vs + lane * ld, D);
      ds = p * (dp - dl);
    }
    for (int jj = 0; jj < kBc; ++jj) {
      const T dsj = __shfl_sync(0xffffffffu, ds, jj);
      for (int r = 0; r < kMaxPerLane; ++r) {
        const std::int64_t d = lane + 32 * r;
        if (d < D) acc[r] += dsj * ks[jj * ld + d];
      }
    }
  }
  if (!active) return;
  for (int r = 0; r < kMaxPerLane; ++r) {
    const std::int64_t d = lane + 32 * r;
    if (d < D) dq[dm.qrow(b, i, h) + d] = scale * acc[r];
  }
}

// dk, dv of one key row per warp, summed over the query heads of its group (in order) and the query
// rows i >= j (in order).
template <class T>
__global__ void backward_dkv_kernel(Dims dm, T scale, const T* dout, const T* q, const T* k, const T* v,
                                    const T* lse, const T* delta, T* dk, T* dv) {
  extern __shared__ unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const std::int64_t D = dm.D, ld = D + 1;
  T* kr = smem;               // [kRows][D]
  T* vr = kr + kRows * D;     // [kRows][D]
  T* qs = vr + kRows * D;     // [kBc][D + 1]
  T* dos = qs + kBc * ld;     // [kBc][D + 1]
  T* ls = dos + kBc * ld;     // [kBc]
  T* dls = ls + kBc;          // [kBc]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::int64_t b = blockIdx.z, g = blockIdx.y, group = dm.H / dm.Hkv;
  const std::int64_t j0 = static_cast<std::int64_t>(blockIdx.x) * kRows, j = j0 + warp;
  const bool active = j < dm.T;
  if (active)
    for (std::int64_t d = lane; d < D; d += 32) {
      kr[warp * D + d] = k[dm.krow(b, j, g) + d];
      vr[warp * D + d] = v[dm.krow(b, j, g) + d];
    }
  T acc_k[kMaxPerLane], acc_v[kMaxPerLane];
  for (int r = 0; r < kMaxPerLane; ++r) acc_k[r] = acc_v[r] = T(0);
  const std::int64_t qstride = dm.H * D;
  for (std::int64_t hh = 0; hh < group; ++hh) {
    const std::int64_t h = g * group + hh;
    const T* lrow = lse + (b * dm.H + h) * dm.T;
    const T* drow = delta + (b * dm.H + h) * dm.T;
    for (std::int64_t q0 = j0; q0 < dm.T; q0 += kBc) {
      __syncthreads();
      load_tile(qs, q + dm.qrow(b, 0, h), qstride, q0, dm.T, D);
      load_tile(dos, dout + dm.qrow(b, 0, h), qstride, q0, dm.T, D);
      for (std::int64_t e = threadIdx.x; e < kBc; e += blockDim.x) {
        ls[e] = q0 + e < dm.T ? lrow[q0 + e] : T(0);
        dls[e] = q0 + e < dm.T ? drow[q0 + e] : T(0);
      }
      __syncthreads();
      if (!active) continue;
      const std::int64_t i = q0 + lane;
      T p = T(0), ds = T(0);
      if (i < dm.T && i >= j) {
        p = exp(scale * dot_row(qs + lane * ld, kr + warp * D, D) - ls[lane]);
        const T dp = dot_row(dos + lane * ld, vr + warp * D, D);
        ds = p * (dp - dls[lane]);
      }
      for (int ii = 0; ii < kBc; ++ii) {
        const T pi = __shfl_sync(0xffffffffu, p, ii);
        const T dsi = __shfl_sync(0xffffffffu, ds, ii);
        for (int r = 0; r < kMaxPerLane; ++r) {
          const std::int64_t d = lane + 32 * r;
          if (d < D) {
            acc_v[r] += pi * dos[ii * ld + d];
            acc_k[r] += dsi * qs[ii * ld + d];
          }
        }
      }
    }
  }
  if (!active) return;
  for (int r = 0; r < kMaxPerLane; ++r) {
    const std::int64_t d = lane + 32 * r;
    if (d < D) {
      dk[dm.krow(b, j, g) + d] = scale * acc_k[r];
      dv[dm.krow(b, j, g) + d] = acc_v[r];
    }
  }
}

// Grants a kernel the dynamic shared memory it needs beyond the default 48 KiB (Hopper: up to 227 KiB).
template <class K>
void allow_smem(K kernel, std::size_t bytes, const char* what) {
  int dev = 0, max_optin = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
        "cudaDeviceGetAttribute");
  QUOPT_CHECK(bytes <= static_cast<std::size_t>(max_optin), what, ": needs ", bytes,
              " bytes of shared memory per block for this head dimension, the device offers ", max_optin,
              "; use a smaller head_dim (or f32 instead of f64)");
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
        "cudaFuncSetAttribute");
}

Dims dims_of(const AttentionDims& s) {
  return Dims{s.batch, s.seq, s.heads, s.kv_heads, s.head_dim};
}

void check_dims(const AttentionDims& s) {
  QUOPT_CHECK(s.head_dim <= 32 * kMaxPerLane, "attention (CUDA): head_dim = ", s.head_dim,
              " exceeds the kernel's maximum ", 32 * kMaxPerLane, "; use a smaller head dimension");
  // Heads and batch index the grid's y and z dimensions (at most 65535 each).
  QUOPT_CHECK(s.heads <= 65535 && s.batch <= 65535, "attention (CUDA): ", s.batch, " sequences x ", s.heads,
              " heads exceed the 65535 blocks of a grid dimension; split the batch");
}

}  // namespace

template <class T>
void attention_forward(const AttentionDims& s, const T* q, const T* k, const T* v, T* out, T* lse) {
  if (s.batch * s.heads * s.seq == 0) return;
  check_dims(s);
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  const std::size_t smem = sizeof(T) * static_cast<std::size_t>(kRows * s.head_dim + 2 * kBc * (s.head_dim + 1));
  allow_smem(forward_kernel<T>, smem, "attention_forward");
  const dim3 grid(static_cast<unsigned>((s.seq + kRows - 1) / kRows), static_cast<unsigned>(s.heads),
                  static_cast<unsigned>(s.batch));
  forward_kernel<T><<<grid, 32 * kRows, smem, stream()>>>(dims_of(s), scale, q, k, v, out, lse);
  check_launch("attention forward kernel");
}

template <class T>
void attention_backward(const AttentionDims& s, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, T* dq, T* dk, T* dv) {
  if (s.batch * s.heads * s.seq == 0) return;
  check_dims(s);
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  T* delta = nullptr;
  const std::size_t delta_bytes = sizeof(T) * static_cast<std::size_t>(s.batch * s.heads * s.seq);
  check(cudaMallocAsync(reinterpret_cast<void**>(&delta), delta_bytes, stream()), "cudaMallocAsync (attention)");
  const Dims dm = dims_of(s);
  const std::size_t smem_dq =
      sizeof(T) * static_cast<std::size_t>(2 * kRows * s.head_dim + 2 * kBc * (s.head_dim + 1));
  allow_smem(backward_dq_kernel<T>, smem_dq, "attention_backward");
  const dim3 grid_q(static_cast<unsigned>((s.seq + kRows - 1) / kRows), static_cast<unsigned>(s.heads),
                    static_cast<unsigned>(s.batch));
  backward_dq_kernel<T><<<grid_q, 32 * kRows, smem_dq, stream()>>>(dm, scale, dout, q, k, v, out, lse, dq, delta);
  check_launch("attention backward dq kernel");
  const std::size_t smem_kv =
      sizeof(T) * static_cast<std::size_t>(2 * kRows * s.head_dim + 2 * kBc * (s.head_dim + 1) + 2 * kBc);
  allow_smem(backward_dkv_kernel<T>, smem_kv, "attention_backward");
  const dim3 grid_kv(static_cast<unsigned>((s.seq + kRows - 1) / kRows), static_cast<unsigned>(s.kv_heads),
                     static_cast<unsigned>(s.batch));
  backward_dkv_kernel<T><<<grid_kv, 32 * kRows, smem_kv, stream()>>>(dm, scale, dout, q, k, v, lse, delta, dk, dv);
  check_launch("attention backward dk/dv kernel");
  check(cudaFreeAsync(delta, stream()), "cudaFreeAsync (attention)");
}

template void attention_forward<float>(const AttentionDims&, const float*, const float*, const float*, float*,
                                       float*);
template void attention_forward<double>(const AttentionDims&, const double*, const double*, const double*,
                                        double*, double*);
template void attention_backward<float>(const AttentionDims&, const float*, const float*, const float*,
                                        const float*, const float*, const float*, float*, float*, float*);
template void attention_backward<double>(const AttentionDims&, const double*, const double*, const double*,
                                         const double*, const double*, const double*, double*, double*,
                                         double*);

}  // namespace quopt::kernels::cuda
