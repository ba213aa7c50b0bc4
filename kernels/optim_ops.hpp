#pragma once
// The primitives of the matrix optimizers (Shampoo, SOAP) beyond GEMM, on any device: moment updates
// in the arithmetic of the optimizers' element loops, sub-blocks of a parameter matrix, diagonal and
// column scalings, and the symmetric eigendecomposition and QR (LAPACK on the host, cuSOLVER on CUDA).
// Same conventions as kernels/ops.hpp: Tensors in (contiguous, row-major), shapes/dtypes/devices
// checked with messages naming the op and the argument, dispatch by device; f32 and f64.
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

namespace quopt::kernels {

// ---- element-wise moment updates ------------------------------------------------------------------
// v = a v + b x, or v = a v + b (x x) when square, with a and b rounded to v's dtype and the arithmetic
// in v's dtype (the EMA of an Adam-type moment; a = b = 1 with square is AdaGrad's sum).
void ema(Tensor& v, const Tensor& x, double a, double b, bool square);
// out = m / (sqrt(v c) + eps) with c and eps rounded to m's dtype, in m's dtype (Adam's direction with
// the second moment's bias correction c = 1 / (1 - beta2^t)); out may be m.
void adam_direction(const Tensor& m, const Tensor& v, double c, double eps, Tensor& out);

// ---- matrices ---------------------------------------------------------------------------------------------
// a[i, i] += value (rounded to a's dtype) for a square a.
void add_diagonal(Tensor& a, double value);
// a[i, j] *= s[j] for a [m, n], s [n] of a's dtype and device.
void scale_columns(Tensor& a, const Tensor& s);
// max_ij |a[i, j] - [i == j]| (in double) of a square a: the distance to the identity.
double max_abs_minus_identity(const Tensor& a);
// dst = src element-wise, converting between f32 and f64 (any combination, same device and numel).
void convert(const Tensor& src, Tensor& dst);
// block [r, c] = full[row0 : row0 + r, col0 : col0 + c] of a 2-D full.
void copy_block(const Tensor& full, std::int64_t row0, std::int64_t col0, Tensor& block);
// full[row0 : row0 + r, col0 : col0 + c] += alpha block, alpha rounded to full's dtype.
void add_block(Tensor& full, std::int64_t row0, std::int64_t col0, const Tensor& block, double alpha);

// out[:, j] = a[:, idx[j]] (gather_columns) or out[i, :] = a[idx[i], :] (gather_rows) for a 2-D a; idx
// (host) has one entry in [0, n) per output column (row); out like a.
void gather_columns(const Tensor& a, const std::vector<std::int64_t>& idx, Tensor& out);
void gather_rows(const Tensor& a, const std::vector<std::int64_t>& idx, Tensor& out);
// d[j] = sum_i a[i, j] b[i, j] of two 2-D tensors of one shape, in double, rows in order (the diagonal of
// a^T b); returned to the host.
std::vector<double> column_dots(const Tensor& a, const Tensor& b);

// ---- decompositions ------------------------------------------------------------------------------------
// Symmetric eigendecomposition in place: a [n, n] symmetric (its upper triangle is read) becomes Q with
// column j the unit eigenvector of w[j]; w [n] ascending. Divide and conquer (LAPACK ?syevd, cuSOLVER
// ?syevd). Returns the library's info (0: success; > 0: did not converge). Non-finite input is the
// caller's to check.
int eigh_inplace(Tensor& a, Tensor& w);
// Reduced QR in place: a [m, n] (m >= n) becomes Q [m, n] with orthonormal columns and r [n, n] the upper
// triangular R, a = Q R, by Householder reflections (?geqrf + ?orgqr: LAPACK's sign convention, the
// one torch.linalg.qr uses). Returns the library's info (0: success).
int qr_inplace(Tensor& a, Tensor& r);

}  // namespace quopt::kernels
