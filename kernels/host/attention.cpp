// Host causal attention (see attention.hpp). The forward runs one Kokkos task per (batch, query
// head). The backward runs one task per (batch, kv head) that handles every query head of the group,
// so dk and dv of a kv head are only written by one task (no races, fixed summation order). Query
// rows are processed in blocks of kRowBlock rows: the block's scores against keys [0, last row of
// the block] are one strided GEMM into a per-task scratch (rows x cols), so the scratch stays small
// for long sequences and the masked triangle beyond the block's diagonal is never computed.
#include "kernels/host/attention.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/host/host_policy.hpp"
#include "kernels/host/threads.hpp"
#include "kernels/host/softmax_loops.hpp"

namespace quopt::kernels::host {
namespace {

// Query rows per block. A cache-tiling choice (FlashAttention-2, Dao 2023, uses Br = 64 row blocks
// on GPUs); results do not depend on it beyond rounding.
constexpr std::int64_t kRowBlock = 64;

// Row-major GEMM on strided sub-matrices: c = alpha * op(a) op(b) + beta * c.
inline void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda),
              b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}
inline void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                 const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
                 std::int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda),
              b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// Offsets and strides of one (batch, kv head) pair.
struct Task {
  std::int64_t b = 0, g = 0;
  std::int64_t group = 0;   // query heads per kv head
  std::int64_t ldq = 0;     // row stride of q/out/dout/dq: H * D
  std::int64_t ldk = 0;     // row stride of k/v/dk/dv: Hkv * D
  std::int64_t q_base = 0;  // offset of (b, t=0, h=0) in q-like tensors
  std::int64_t k_base = 0;  // offset of (b, t=0, g) in k-like tensors

  Task(const AttentionDims& d, std::int64_t task)
      : b(task / d.kv_heads),
        g(task % d.kv_heads),
        group(d.heads / d.kv_heads),
        ldq(d.heads * d.head_dim),
        ldk(d.kv_heads * d.head_dim),
        q_base(b * d.seq * d.heads * d.head_dim),
        k_base(b * d.seq * d.kv_heads * d.head_dim + g * d.head_dim) {}
  std::int64_t head(std::int64_t hh) const { return g * group + hh; }
  std::int64_t q_off(const AttentionDims& d, std::int64_t h) const { return q_base + h * d.head_dim; }
};

// One forward task: query head h of batch tk.b (tk.g is its kv head).
template <class T>
void forward_head(const AttentionDims& d, const Task& tk, std::int64_t h, T scale, const T* q, const T* k,
                  const T* v, T* out, T* lse) {
  const std::int64_t T_ = d.seq, D = d.head_dim;
  std::vector<T> s(static_cast<std::size_t>(std::min(kRowBlock, T_) * T_));
  const T* kg = k + tk.k_base;
  const T* vg = v + tk.k_base;
  const T* qh = q + tk.q_off(d, h);
  T* oh = out + tk.q_off(d, h);
  T* lh = lse + (tk.b * d.heads + h) * T_;
  for (std::int64_t i0 = 0; i0 < T_; i0 += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, T_ - i0);
    const std::int64_t cols = i0 + rows;  // keys 0 .. last row of the block
    gemm(false, true, rows, cols, D, scale, qh + i0 * tk.ldq, tk.ldq, kg, tk.ldk, T(0), s.data(), cols);
    for (std::int64_t r = 0; r < rows; ++r) {
      T* row = s.data() + r * cols;
      const std::int64_t n = i0 + r + 1;  // row i attends to keys 0..i
      const T m = row_max(row, n);
      const double sum = exp_shifted_sum(row, row, n, m);
      const T inv = static_cast<T>(1.0 / sum);
      for (std::int64_t j = 0; j < n; ++j) row[j] *= inv;
      for (std::int64_t j = n; j < cols; ++j) row[j] = T(0);
      lh[i0 + r] = static_cast<T>(static_cast<double>(m) + std::log(sum));
    }
    gemm(false, false, rows, D, cols, T(1), s.data(), cols, vg, tk.ldk, T(0), oh + i0 * tk.ldq, tk.ldq);
  }
}

// One backward task: writes dq of the group's query heads and dk, dv of kv head tk.g.
template <class T>
void backward_task(const AttentionDims& d, const Task& tk, T scale, const T* dout, const T* q, const T* k,
                   const T* v, const T* out, const T* lse, T* dq, T* dk, T* dv) {
  const std::int64_t T_ = d.seq, D = d.head_dim;
  const std::size_t scratch = static_cast<std::size_t>(std::min(kRowBlock, T_) * T_);
  std::vector<T> p(scratch), ds(scratch), delta(static_cast<std::size_t>(std::min(kRowBlock, T_)));
  const T* kg = k + tk.k_base;
  const T* vg = v + tk.k_base;
  T* dkg = dk + tk.k_base;
  T* dvg = dv + tk.k_base;
  for (std::int64_t t = 0; t < T_; ++t) {
    std::fill(dkg + t * tk.ldk, dkg + t * tk.ldk + D, T(0));
    std::fill(dvg + t * tk.ldk, dvg + t * tk.ldk + D, T(0));
  }
  for (std::int64_t hh = 0; hh < tk.group; ++hh) {
    const std::int64_t h = tk.head(hh);
    const std::int64_t off = tk.q_off(d, h);
    const T* qh = q + off;
    const T* oh = out + off;
    const T* doh = dout + off;
    T* dqh = dq + off;
    const T* lh = lse + (tk.b * d.heads + h) * T_;
    for (std::int64_t i0 = 0; i0 < T_; i0 += kRowBlock) {
      const std::int64_t rows = std::min(kRowBlock, T_ - i0);
      const std::int64_t cols = i0 + rows;
      const std::int64_t qo = i0 * tk.ldq;
      // P = exp(scale * Q K^T - lse), zero above the diagonal.
      gemm(false, true, rows, cols, D, scale, qh + qo, tk.ldq, kg, tk.ldk, T(0), p.data(), cols);
      for (std::int64_t r = 0; r < rows; ++r) {
        T* row = p.data() + r * cols;
        const std::int64_t n = i0 + r + 1;
        const T l = lh[i0 + r];
        exp_shifted(row, row, n, l);
        for (std::int64_t j = n; j < cols; ++j) row[j] = T(0);
        // delta_i = rowsum(dO_i * O_i) (= sum_j P_ij dP_ij; FlashAttention-2, Dao 2023, Alg. 2).
        const T* dorow = doh + qo + r * tk.ldq;
        const T* orow = oh + qo + r * tk.ldq;
        delta[static_cast<std::size_t>(r)] = static_cast<T>(sum_lanes_of(D, [=](std::int64_t c) {
          return static_cast<double>(dorow[c]) * static_cast<double>(orow[c]);
        }));
      }
      // dP = dO V^T; dS = P * (dP - delta).
      gemm(false, true, rows, cols, D, T(1), doh + qo, tk.ldq, vg, tk.ldk, T(0), ds.data(), cols);
      for (std::int64_t r = 0; r < rows; ++r) {
        const T* prow = p.data() + r * cols;
        T* srow = ds.data() + r * cols;
        const T dl = delta[static_cast<std::size_t>(r)];
        for (std::int64_t j = 0; j < cols; ++j) srow[j] = prow[j] * (srow[j] - dl);
      }
      // dV[0:cols] += P^T dO; dQ = scale dS K; dK[0:cols] += scale dS^T Q.
      gemm(true, false, cols, D, rows, T(1), p.data(), cols, doh + qo, tk.ldq, T(1), dvg, tk.ldk);
      gemm(false, false, rows, D, cols, scale, ds.data(), cols, kg, tk.ldk, T(0), dqh + qo, tk.ldq);
      gemm(true, false, cols, D, rows, scale, ds.data(), cols, qh + qo, tk.ldq, T(1), dkg, tk.ldk);
    }
  }
}

}  // namespace

template <class T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, T* out, T* lse) {
  // The forward writes nothing shared between heads, so every (batch, query head) is a task.
  const std::int64_t n_tasks = d.batch * d.heads;
  if (n_tasks == 0 || d.seq == 0) return;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(d.head_dim)));
  const std::int64_t group = d.heads / d.kv_heads;
  const auto task = [&](const std::int64_t i) {
    const std::int64_t b = i / d.heads, h = i % d.heads;
    forward_head(d, Task(d, b * d.kv_heads + h / group), h, scale, q, k, v, out, lse);
  };
  const SingleThreadedBlas one_blas_thread_per_task(host_threads() > 1 && n_tasks > 1);
  host_for("quopt::host::attention_forward", n_tasks, task, d.seq * d.seq * d.head_dim);
}

template <class T>
void attention_backward(const AttentionDims& d, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, T* dq, T* dk, T* dv) {
  const std::int64_t n_tasks = d.batch * d.kv_heads;
  if (n_tasks == 0 || d.seq == 0) return;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(d.head_dim)));
  const auto task = [&](const std::int64_t i) {
    backward_task(d, Task(d, i), scale, dout, q, k, v, out, lse, dq, dk, dv);
  };
  const SingleThreadedBlas one_blas_thread_per_task(host_threads() > 1 && n_tasks > 1);
  host_for("quopt::host::attention_backward", n_tasks, task, 4 * d.seq * d.seq * d.head_dim);
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

}  // namespace quopt::kernels::host
