#pragma once
// The primitives of PSGD-Kron (src/optim/psgd_kron.cpp) on any device: triangular and diagonal factors
// applied to a matrix, Gram matrices and row/column sums of squares, the whitening updates of one factor,
// the spectral-norm lower bound, and the small reductions and element updates of the step. Same
// conventions as kernels/ops.hpp: Tensors in (contiguous, row-major), f32 or f64, shapes/dtypes/devices
// checked with messages naming the op and the argument, dispatch by device (host: these loops and BLAS;
// CUDA: kernels/cuda/psgd.cu and cuBLAS).
#include "core/tensor.hpp"

namespace quopt::kernels {

// x [rows, cols] <- op(F) x (side 0, F [rows, rows]) or x op(F) (side 1, F [cols, cols]) for an upper
// triangular F (its strict lower triangle is not read); op(F) = F^T with trans; with solve, op(F)^-1
// instead (BLAS ?trmm / ?trsm).
void triangular_apply(const Tensor& f, int side, bool trans, bool solve, Tensor& x);
// x [rows, cols]: x[i, j] *= d[i] (side 0, d [rows]) or d[j] (side 1, d [cols]); divided with solve.
void diagonal_apply(const Tensor& d, int side, bool solve, Tensor& x);
// c [n, n] = x x^T for x [n, k], or x^T x for x [k, n] with transposed (BLAS ?gemm, beta 0).
void gram(const Tensor& x, bool transposed, Tensor& c);
// Sums of squares of x [rows, cols] in double, in index order, rounded to out's dtype: out[i] over row i
// (side 0, out [rows]) or out[j] over column j (side 1, out [cols]).
void sum_squares_axis(const Tensor& x, int side, Tensor& out);
// sum |x| and max |x| over all elements, in double (read by the host).
double abs_sum(const Tensor& x);
double max_abs(const Tensor& x);
// out = x / d with d rounded to x's dtype (out may be x).
void divide(const Tensor& x, double d, Tensor& out);
// w -= lr (d + wd w), lr and wd rounded to w's dtype: a decoupled weight-decay update.
void decayed_update(Tensor& w, const Tensor& d, double lr, double wd);
// x *= min(1, clip / (rms(x) + 1e-12)) (kron_torch _clip_update_rms; rms in double); clip <= 0: no-op.
// Returns the factor applied.
double clip_rms(Tensor& x, double clip);

// Cheap lower bound of the spectral norm of a symmetric s [n, n] (kron_torch _lb): with m = max|s_ij| and
// s' = s / m, the column x of s' with the largest norm (the first on ties), y = s'^T x / |s'^T x|, returns
// m |s' y|; 0 for s = 0. In double.
double norm_lower_bound(const Tensor& s);
// One PSGD-Kron whitening step of a factor q from its statistics t1 (from A) and t2 (from B) (kron_torch
// _update_precond): diagonal q [n], t1, t2 [n]: q -= lr (t1 - t2) q / max(max|t1 + t2|, tiny);
// triangular q [n, n], t1, t2 [n, n]: q -= triu(lr (t1 - t2) / max(lb(t1 + t2), tiny)) q, tiny the smallest
// normal float (torch.finfo(float32).tiny). When the result is not finite q keeps its value and the call
// returns false.
bool psgd_diagonal_update(Tensor& q, const Tensor& t1, const Tensor& t2, double lr);
bool psgd_triangular_update(Tensor& q, const Tensor& t1, const Tensor& t2, double lr);

}  // namespace quopt::kernels
