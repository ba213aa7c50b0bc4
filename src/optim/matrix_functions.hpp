#pragma once
// Dense matrix functions for the matrix optimizers (Shampoo, SOAP; also usable by PSGD and GPTQ):
// symmetric eigendecomposition, QR, Cholesky, triangular solves and inverse p-th roots of symmetric
// positive (semi-)definite matrices. LAPACK(E)/CBLAS (OpenBLAS) on the host; eigh, qr, the inverse
// roots and all_finite also take device tensors (optim/matrix_functions_device.hpp: cuSOLVER). Every
// function takes row-major f32 or f64 Tensors (the result has the input's dtype); the f32 ones that can
// fail have an fp64 retry, as facebookresearch/optimizers' matrix_functions.py (retry_double_precision=True).
// Functions that can fail numerically report it in their result instead of throwing, so a caller can
// keep its previous value (an exception on one rank of a sharded step would hang the others); bad
// arguments (shapes, dtypes) throw quopt::Error.
#include <cstdint>
#include <string>

#include "core/tensor.hpp"

namespace quopt {

// ---- helpers ------------------------------------------------------------------------------------
// n x n identity of dtype dt on dev.
Tensor identity_matrix(std::int64_t n, DType dt = DType::F32, Device dev = Device::Host);
// True if every element is finite (f32 or f64).
bool all_finite(const Tensor& t);

// ---- symmetric eigendecomposition --------------------------------------------------------------
struct EighResult {
  bool ok = false;         // false: LAPACK did not converge or produced non-finite values (after the retry)
  bool used_fp64 = false;  // the f32 attempt failed and the fp64 retry succeeded
  int info = 0;            // LAPACK info of the last attempt (0 = success; -1000: non-finite input/output)
  Tensor eigenvalues;      // [n], ascending (LAPACK ?syevd order), input dtype
  Tensor eigenvectors;     // [n, n], column j is the unit eigenvector of eigenvalues[j], input dtype
  std::string message;     // arguments LAPACK rejected, if any (core/blas_errors.hpp); "" otherwise
};
// A = Q diag(w) Q^T for a symmetric n x n A (only its upper triangle is read), by LAPACKE_?syevd.
// An f32 failure is retried in fp64 when retry_fp64 (results converted back to f32).
EighResult eigh(const Tensor& a, bool retry_fp64 = true);
// The minimum workspaces of ?syevd with eigenvectors (LAPACK's documented LWORK and LIWORK), in
// integers: eigh sizes its work arrays with at least these, never with a workspace query's answer
// alone (ssyevd returns it as a float, which rounds it down above n ~ 2,900).
struct SyevdWorkspace {
  std::int64_t lwork = 0, liwork = 0;
};
SyevdWorkspace syevd_workspace(std::int64_t n);

// ---- QR -------------------------------------------------------------------------------------------
struct QrResult {
  bool ok = false;
  int info = 0;
  Tensor q;  // [m, n] with orthonormal columns
  Tensor r;  // [n, n] upper triangular; a = q r
};
// Reduced QR of a [m, n] with m >= n (LAPACKE_?geqrf + ?orgqr, Householder; LAPACK's sign convention,
// the one torch.linalg.qr uses).
QrResult qr(const Tensor& a);

// ---- Cholesky and triangular solves ------------------------------------------------------------------
// In place: a (n x n, symmetric positive definite; the triangle named by `upper` is read) becomes its
// Cholesky factor, U with a = U^T U (upper) or L with a = L L^T (lower); the other triangle is zeroed.
// Returns LAPACK's info: 0 on success, k > 0 when the leading minor of order k is not positive definite
// (then a is left partially factored).
int cholesky(Tensor& a, bool upper);
// In place on b [m, n]: solves op(A) X = alpha B (left) or X op(A) = alpha B (right) with A triangular
// (square, the side's size), op(A) = A^T when trans; unit_diag: A's diagonal taken as 1. cblas_?trsm.
void triangular_solve(const Tensor& a, Tensor& b, bool left, bool upper, bool trans, bool unit_diag,
                      double alpha = 1.0);

// ---- inverse p-th root of a symmetric PSD matrix ------------------------------------------------------
struct RootResult {
  bool ok = false;         // false: keep the previous root (see message)
  bool used_fp64 = false;  // eigen method: the f32 eigendecomposition failed, the fp64 retry succeeded
  int iterations = 0;      // Newton method: iterations run
  bool converged = true;   // Newton method: reached the tolerance within max_iterations
  double error = 0.0;      // Newton method: max |M - I| at exit
  std::string message;     // why it failed
  Tensor root;             // A^(-1/p) (input dtype); undefined when !ok
};
// Eigendecomposition method with facebookresearch/optimizers' default epsilon handling
// (matrix_functions.py, PerturbationConfig(perturb_before_computation=True)):
//   A_ridge = A + eps I;  A_ridge = Q diag(L) Q^T;
//   if min(L) < eps:  L <- L - min(L) + eps          (makes it positive if A was not PSD numerically)
//   X = Q diag(L^(-1/p)) Q^T.
// p > 0 (any real). The product is formed in the input dtype (f32 like the reference).
RootResult inverse_root_eigen(const Tensor& a, double p, double epsilon, bool retry_fp64 = true);
// Coupled inverse Newton iteration (Guo & Higham 2006; facebookresearch/optimizers'
// matrix_inverse_root_newton) for an integer p >= 1, in the input dtype:
//   A_ridge = A + eps I; z = (p + 1) / (2 ||A_ridge||_F); X = z^(1/p) I; M = z A_ridge;
//   repeat while max|M - I| > tol and it < max_iterations:
//     M' = (1 + 1/p) I - M / p;  X = X M';  M = M'^p M.
// Not converging within max_iterations is reported (converged = false) but the result is kept, as the
// reference (it only logs a warning); non-finite results fail.
RootResult inverse_root_newton(const Tensor& a, int p, double epsilon, int max_iterations = 100,
                               double tolerance = 1e-6);

namespace detail {
// Test hook: the next `count` f32 eigendecompositions report failure (info = -2000) without calling
// LAPACK, so tests can exercise the fp64 retry and the keep-the-previous-root paths.
void fail_next_f32_eigh_for_testing(int count);
}  // namespace detail

}  // namespace quopt
