#pragma once
// Host kernels of the matrix optimizers' primitives (kernels/optim_ops.hpp), twins of
// kernels/cuda/optim.cu and kernels/cuda/linalg.cpp. T = float or double.
#include <cstdint>

namespace quopt::kernels::host {

// v[i] = T(a) v[i] + T(b) x[i]  (square: T(b) (x[i] x[i])).
template <class T>
void ema(T* v, const T* x, std::int64_t n, double a, double b, bool square);
// out[i] = m[i] / (sqrt(v[i] T(c)) + T(eps)).
template <class T>
void adam_direction(const T* m, const T* v, std::int64_t n, double c, double eps, T* out);
// a[i * n + i] += T(value), i < n.
template <class T>
void add_diagonal(T* a, std::int64_t n, double value);
// a[i * cols + j] *= s[j].
template <class T>
void scale_columns(T* a, std::int64_t rows, std::int64_t cols, const T* s);
// max_ij |a[i * n + j] - [i == j]| in double.
template <class T>
double max_abs_minus_identity(const T* a, std::int64_t n);
// dst[i] = D(src[i]).
template <class S, class D>
void convert(const S* src, std::int64_t n, D* dst);
// block[i * cols + j] = full[(row0 + i) * ld + col0 + j].
template <class T>
void copy_block(const T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0, std::int64_t rows,
                std::int64_t cols, T* block);
// full[(row0 + i) * ld + col0 + j] += T(alpha) block[i * cols + j].
template <class T>
void add_block(T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0, std::int64_t rows,
               std::int64_t cols, const T* block, double alpha);
// out[i * cols + j] = a[i * cols + idx[j]] (columns) or a[idx[i] * cols + j] (rows); idx on the host.
template <class T>
void gather(const T* a, std::int64_t rows, std::int64_t cols, const std::int64_t* idx, bool columns, T* out);
// d[j] = sum_i double(a[i * cols + j]) double(b[i * cols + j]), i ascending; d on the host.
template <class T>
void column_dots(const T* a, const T* b, std::int64_t rows, std::int64_t cols, double* d);
// LAPACKE_?syevd (row-major, 'V', upper) in place on a [n, n]; w [n]. Returns info.
template <class T>
int eigh_inplace(T* a, std::int64_t n, T* w);
// LAPACKE_?geqrf + ?orgqr (row-major) in place on a [m, n]; r [n, n] gets R (zeros below). Returns info.
template <class T>
int qr_inplace(T* a, std::int64_t m, std::int64_t n, T* r);

}  // namespace quopt::kernels::host
