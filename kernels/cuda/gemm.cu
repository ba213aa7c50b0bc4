// Row-major GEMM: fp32 through cuBLASLt (strict fp32, or bf16 tensor-core compute with fp32 accumulation
// and fp32 storage in the bf16 mode), fp64 through cuBLAS. Both are column-major; a row-major [r, c]
// matrix is the column-major [c, r] matrix (its transpose) with the same leading dimension, so
// C = op(A) op(B) is computed as the column-major product C^T = op(B)^T op(A)^T with A and B swapped and
// the same transpose flags.
#include <cstdint>
#include <map>
#include <type_traits>
#include <tuple>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/gemm.hpp"

namespace quopt::kernels::cuda {

namespace {

// c = beta * c for the degenerate k == 0 product (beta == 0 writes zeros, also over NaNs).
template <class T>
__global__ void scale_matrix_kernel(T* c, std::int64_t m, std::int64_t n, std::int64_t ldc, T beta) {
  const std::int64_t total = m * n;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    T& x = c[(i / n) * ldc + i % n];
    x = beta == T(0) ? T(0) : beta * x;
  }
}

template <class T>
void scale_matrix(T* c, std::int64_t m, std::int64_t n, std::int64_t ldc, double beta) {
  scale_matrix_kernel<T><<<grid_for(m * n), kBlock, 0, stream()>>>(c, m, n, ldc, static_cast<T>(beta));
  check_launch("gemm (k = 0) scale kernel");
}

bool g_bf16_compute = false;

// cuBLASLt workspace: 32 MiB, what cuBLAS itself reserves per stream on Hopper (cuBLAS docs, "cuBLAS
// workspace": 32 MiB for sm_90).
constexpr std::size_t kLtWorkspace = 32u << 20;
void* lt_workspace() {
  static void* w = [] {
    void* p = nullptr;
    check(cudaMalloc(&p, kLtWorkspace), "cudaMalloc (cuBLASLt workspace)");
    return p;
  }();
  return w;
}

// One cuBLASLt plan (descriptors + the heuristic's algorithm) per distinct problem, built on first use.
struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};
// (trans of b, trans of a, n, m, k, ldb, lda, ldc, batch, strides of b, a, c, bf16 compute, alignments in
// bytes of b, a, c).
using LtKey = std::tuple<bool, bool, int, int, int, int, int, int, int, long long, long long, long long, bool,
                         unsigned, unsigned, unsigned>;

// The alignment (bytes, a power of two from 4 to 256) every matrix of a batch starts at. cuBLASLt's
// heuristic assumes 256-byte aligned operands unless told otherwise (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*,
// default 256), and a plan chosen for aligned operands may not run on a view that starts mid-allocation.
unsigned alignment_of(const void* p, long long stride_elems) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  const auto stride = static_cast<std::uintptr_t>(stride_elems) * sizeof(float);
  unsigned a = 256;
  while (a > 4 && (addr % a != 0 || stride % a != 0)) a /= 2;
  return a;
}

void set_layout_batch(cublasLtMatrixLayout_t l, int batch, long long stride) {
  if (batch <= 1) return;
  check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch),
        "cublasLtMatrixLayoutSetAttribute (batch)");
  check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride),
        "cublasLtMatrixLayoutSetAttribute (stride)");
}

const LtPlan& lt_plan(const LtKey& key) {
  static std::map<LtKey, LtPlan> plans;
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  const auto [tb, ta, n, m, k, ldb, lda, ldc, batch, sb, sa, sc, bf16, align_b, align_a, align_c] = key;
  LtPlan p;
  const cublasComputeType_t compute = bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
  check(cublasLtMatmulDescCreate(&p.op, compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opb, sizeof opb), "TRANSA");
  check(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opa, sizeof opa), "TRANSB");
  // Column-major view: the first operand is B^T-ish [n, k] (or [k, n] when transposed), the second A.
  check(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_32F, tb ? k : n, tb ? n : k, ldb), "layout (b)");
  check(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_32F, ta ? m : k, ta ? k : m, lda), "layout (a)");
  check(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, n, m, ldc), "layout (c)");
  set_layout_batch(p.a, batch, sb);
  set_layout_batch(p.b, batch, sa);
  set_layout_batch(p.c, batch, sc);
  cublasLtMatmulPreference_t pref = nullptr;
  check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const std::size_t ws = kLtWorkspace;
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
        "cublasLtMatmulPreferenceSetAttribute");
  const std::uint32_t al[4] = {align_b, align_a, align_c, align_c};  // cuBLASLt's A, B, C, D
  const cublasLtMatmulPreferenceAttributes_t which[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    check(cublasLtMatmulPreferenceSetAttribute(pref, which[i], &al[i], sizeof al[i]),
          "cublasLtMatmulPreferenceSetAttribute (alignment)");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  check(cublasLtMatmulAlgoGetHeuristic(cublas_lt(), p.op, p.a, p.b, p.c, p.c, pref, 1, &result, &found),
        "cublasLtMatmulAlgoGetHeuristic");
  cublasLtMatmulPreferenceDestroy(pref);
  QUOPT_CHECK(found > 0, "cuBLASLt has no algorithm for a GEMM of m = ", m, ", n = ", n, ", k = ", k);
  p.algo = result.algo;
  return plans.emplace(key, p).first->second;
}

void lt_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, long long sa,
             const float* b, int ldb, long long sb, float beta, float* c, int ldc, long long sc, int batch) {
  const LtPlan& p = lt_plan(LtKey{tb, ta, n, m, k, ldb, lda, ldc, batch, sb, sa, sc, g_bf16_compute,
                                  alignment_of(b, batch > 1 ? sb : 0), alignment_of(a, batch > 1 ? sa : 0),
                                  alignment_of(c, batch > 1 ? sc : 0)});
  check(cublasLtMatmul(cublas_lt(), p.op, &alpha, b, p.a, a, p.b, &beta, c, p.c, c, p.c, &p.algo, lt_workspace(),
                       kLtWorkspace, stream()),
        "cublasLtMatmul");
}

cublasStatus_t gemm_call(cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k, const double* alpha,
                         const double* b, int ldb, const double* a, int lda, const double* beta, double* c,
                         int ldc) {
  return cublasDgemm(cublas(), ob, oa, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
}

cublasStatus_t gemm_batched_call(cublasOperation_t ob, cublasOperation_t oa, int n, int m, int k,
                                 const double* alpha, const double* b, int ldb, long long sb, const double* a,
                                 int lda, long long sa, const double* beta, double* c, int ldc, long long sc,
                                 int batch) {
  return cublasDgemmStridedBatched(cublas(), ob, oa, n, m, k, alpha, b, ldb, sb, a, lda, sa, beta, c, ldc, sc,
                                   batch);
}

cublasOperation_t op(bool trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}
int as_int(std::int64_t v) {
  return static_cast<int>(v);
}  // ranges checked by the dispatch (blas_int)

}  // namespace

void set_bf16_compute(bool on) {
  g_bf16_compute = on;
}
bool bf16_compute() {
  return g_bf16_compute;
}

template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, double beta, T* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_matrix(c, m, n, ldc, beta);
    return;
  }
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  if constexpr (std::is_same_v<T, float>) {
    lt_gemm(trans_a, trans_b, as_int(m), as_int(n), as_int(k), al, a, as_int(lda), 0, b, as_int(ldb), 0, be, c,
            as_int(ldc), 0, 1);
  } else {
    check(gemm_call(op(trans_b), op(trans_a), as_int(n), as_int(m), as_int(k), &al, b, as_int(ldb), a,
                    as_int(lda), &be, c, as_int(ldc)),
          "cublas gemm");
  }
}

template <class T>
void gemm_batched(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m, std::int64_t n,
                  std::int64_t k, double alpha, const T* a, std::int64_t lda, std::int64_t stride_a,
                  const T* b, std::int64_t ldb, std::int64_t stride_b, double beta, T* c, std::int64_t ldc,
                  std::int64_t stride_c) {
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    for (std::int64_t i = 0; i < batch; ++i) scale_matrix(c + i * stride_c, m, n, ldc, beta);
    return;
  }
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  if constexpr (std::is_same_v<T, float>) {
    lt_gemm(trans_a, trans_b, as_int(m), as_int(n), as_int(k), al, a, as_int(lda), stride_a, b, as_int(ldb),
            stride_b, be, c, as_int(ldc), stride_c, as_int(batch));
  } else {
    check(gemm_batched_call(op(trans_b), op(trans_a), as_int(n), as_int(m), as_int(k), &al, b, as_int(ldb),
                            stride_b, a, as_int(lda), stride_a, &be, c, as_int(ldc), stride_c, as_int(batch)),
          "cublas strided batched gemm");
  }
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const float*,
                          std::int64_t, const float*, std::int64_t, double, float*, std::int64_t);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const double*,
                           std::int64_t, const double*, std::int64_t, double, double*, std::int64_t);
template void gemm_batched<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double,
                                  const float*, std::int64_t, std::int64_t, const float*, std::int64_t,
                                  std::int64_t, double, float*, std::int64_t, std::int64_t);
template void gemm_batched<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double,
                                   const double*, std::int64_t, std::int64_t, const double*, std::int64_t,
                                   std::int64_t, double, double*, std::int64_t, std::int64_t);

}  // namespace quopt::kernels::cuda
