#pragma once
// Host twins of the PSGD-Kron primitives (kernels/psgd_ops.hpp) on raw row-major arrays; T = float or
// double. BLAS for the triangular products and Gram matrices, plain loops in index order for the rest.
#include <cstdint>

namespace quopt::kernels::host {

template <class T>
void triangular_apply(const T* f, int side, bool trans, bool solve, T* x, std::int64_t rows,
                      std::int64_t cols);
template <class T>
void diagonal_apply(const T* d, int side, bool solve, T* x, std::int64_t rows, std::int64_t cols);
template <class T>
void gram(const T* x, std::int64_t n, std::int64_t k, bool transposed, T* c);
template <class T>
void sum_squares_axis(const T* x, std::int64_t rows, std::int64_t cols, int side, T* out);
template <class T>
double abs_sum(const T* x, std::int64_t n);
template <class T>
double max_abs(const T* x, std::int64_t n);
template <class T>
void divide(const T* x, std::int64_t n, double d, T* out);
template <class T>
void decayed_update(T* w, const T* d, std::int64_t n, double lr, double wd);
template <class T>
double clip_rms(T* x, std::int64_t n, double clip);
template <class T>
double norm_lower_bound(const T* s, std::int64_t n);
template <class T>
bool psgd_diagonal_update(T* q, const T* t1, const T* t2, std::int64_t n, double lr);
template <class T>
bool psgd_triangular_update(T* q, const T* t1, const T* t2, std::int64_t n, double lr);

}  // namespace quopt::kernels::host
