// CUDA symmetric eigendecomposition and QR (twin of the LAPACK calls in kernels/host/optim.cpp) through
// cuSOLVER, which is column-major: a row-major matrix is the column-major view of its transpose, so the
// inputs and outputs are transposed with cuBLAS geam where the two differ. The info of each call is read
// back on the host (these run when a preconditioner is refreshed, not every step).
#include <type_traits>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/optim.hpp"

namespace quopt::kernels::cuda {

namespace {

// A stream-ordered device buffer of n elements, freed (stream-ordered) when it goes out of scope.
template <class T>
class Scratch {
 public:
  explicit Scratch(std::int64_t n) {
    if (n > 0)
      check(cudaMallocAsync(reinterpret_cast<void**>(&p_), sizeof(T) * static_cast<std::size_t>(n), stream()),
            "cudaMallocAsync (cuSOLVER scratch)");
  }
  ~Scratch() {
    if (p_ != nullptr) (void)cudaFreeAsync(p_, stream());
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

int read_info(const int* info_d, const char* what) {
  int info = 0;
  check(cudaMemcpyAsync(&info, info_d, sizeof info, cudaMemcpyDeviceToHost, stream()), what);
  check(cudaStreamSynchronize(stream()), what);
  return info;
}

// c (column-major rows x cols, ld rows) = a^T, a column-major cols x rows (ld cols).
template <class T>
void transpose(const T* a, std::int64_t rows, std::int64_t cols, T* c) {
  const T one = 1, zero = 0;
  const int r = static_cast<int>(rows), k = static_cast<int>(cols);
  if constexpr (std::is_same_v<T, float>)
    check(cublasSgeam(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, r, k, &one, a, k, &zero, c, r, c, r),
          "cublasSgeam");
  else
    check(cublasDgeam(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, r, k, &one, a, k, &zero, c, r, c, r),
          "cublasDgeam");
}

// r [n, n] row-major = the upper triangle of the column-major m x n factor f (ld m), zeros below.
template <class T>
__global__ void extract_r_kernel(const T* f, std::int64_t m, std::int64_t n, T* r) {
  for (std::int64_t e = first_index(); e < n * n; e += grid_stride()) {
    const std::int64_t i = e / n, j = e % n;
    r[e] = j >= i ? f[j * m + i] : T(0);
  }
}

}  // namespace

template <class T>
int eigh_inplace(T* a, std::int64_t n, T* w) {
  if (n == 0) return 0;
  const int ni = static_cast<int>(n);
  // Row-major upper triangle = column-major lower triangle of the same (symmetric) matrix.
  const auto jobz = CUSOLVER_EIG_MODE_VECTOR;
  const auto uplo = CUBLAS_FILL_MODE_LOWER;
  int lwork = 0;
  if constexpr (std::is_same_v<T, float>)
    check(cusolverDnSsyevd_bufferSize(cusolver(), jobz, uplo, ni, a, ni, w, &lwork),
          "cusolverDnSsyevd_bufferSize");
  else
    check(cusolverDnDsyevd_bufferSize(cusolver(), jobz, uplo, ni, a, ni, w, &lwork),
          "cusolverDnDsyevd_bufferSize");
  Scratch<T> work(lwork);
  Scratch<int> info_d(1);
  if constexpr (std::is_same_v<T, float>)
    check(cusolverDnSsyevd(cusolver(), jobz, uplo, ni, a, ni, w, work.get(), lwork, info_d.get()),
          "cusolverDnSsyevd");
  else
    check(cusolverDnDsyevd(cusolver(), jobz, uplo, ni, a, ni, w, work.get(), lwork, info_d.get()),
          "cusolverDnDsyevd");
  const int info = read_info(info_d.get(), "cusolverDn?syevd info");
  if (info != 0) return info;
  // a holds the eigenvectors as column-major columns, i.e. as rows of the row-major view: transpose.
  Scratch<T> t(n * n);
  transpose(a, n, n, t.get());
  check(cudaMemcpyAsync(a, t.get(), sizeof(T) * static_cast<std::size_t>(n * n), cudaMemcpyDeviceToDevice,
                        stream()),
        "cudaMemcpyAsync (eigenvectors)");
  return 0;
}

template <class T>
int qr_inplace(T* a, std::int64_t m, std::int64_t n, T* r) {
  if (m == 0 || n == 0) {
    if (n > 0)
      check(cudaMemsetAsync(r, 0, sizeof(T) * static_cast<std::size_t>(n * n), stream()), "cudaMemsetAsync");
    return 0;
  }
  const int mi = static_cast<int>(m), ni = static_cast<int>(n);
  Scratch<T> f(m * n), tau(n);
  transpose(a, m, n, f.get());  // the column-major m x n matrix A (ld m)
  int lwork_qr = 0, lwork_q = 0;
  if constexpr (std::is_same_v<T, float>) {
    check(cusolverDnSgeqrf_bufferSize(cusolver(), mi, ni, f.get(), mi, &lwork_qr),
          "cusolverDnSgeqrf_bufferSize");
    check(cusolverDnSorgqr_bufferSize(cusolver(), mi, ni, ni, f.get(), mi, tau.get(), &lwork_q),
          "cusolverDnSorgqr_bufferSize");
  } else {
    check(cusolverDnDgeqrf_bufferSize(cusolver(), mi, ni, f.get(), mi, &lwork_qr),
          "cusolverDnDgeqrf_bufferSize");
    check(cusolverDnDorgqr_bufferSize(cusolver(), mi, ni, ni, f.get(), mi, tau.get(), &lwork_q),
          "cusolverDnDorgqr_bufferSize");
  }
  Scratch<T> work(std::max(lwork_qr, lwork_q));
  Scratch<int> info_d(1);
  if constexpr (std::is_same_v<T, float>)
    check(cusolverDnSgeqrf(cusolver(), mi, ni, f.get(), mi, tau.get(), work.get(), lwork_qr, info_d.get()),
          "cusolverDnSgeqrf");
  else
    check(cusolverDnDgeqrf(cusolver(), mi, ni, f.get(), mi, tau.get(), work.get(), lwork_qr, info_d.get()),
          "cusolverDnDgeqrf");
  int info = read_info(info_d.get(), "cusolverDn?geqrf info");
  if (info != 0) return info;
  extract_r_kernel<T><<<grid_for(n * n), kBlock, 0, stream()>>>(f.get(), m, n, r);
  check_launch("extract_r kernel");
  if constexpr (std::is_same_v<T, float>)
    check(cusolverDnSorgqr(cusolver(), mi, ni, ni, f.get(), mi, tau.get(), work.get(), lwork_q, info_d.get()),
          "cusolverDnSorgqr");
  else
    check(cusolverDnDorgqr(cusolver(), mi, ni, ni, f.get(), mi, tau.get(), work.get(), lwork_q, info_d.get()),
          "cusolverDnDorgqr");
  info = read_info(info_d.get(), "cusolverDn?orgqr info");
  if (info != 0) return info;
  transpose(f.get(), n, m, a);  // back to row-major [m, n]
  return 0;
}

template int eigh_inplace<float>(float*, std::int64_t, float*);
template int eigh_inplace<double>(double*, std::int64_t, double*);
template int qr_inplace<float>(float*, std::int64_t, std::int64_t, float*);
template int qr_inplace<double>(double*, std::int64_t, std::int64_t, double*);

}  // namespace quopt::kernels::cuda
