#pragma once
// CUDA kernels of the matrix optimizers' primitives on device pointers; the same contracts and
// signatures as kernels/host/optim.hpp.
#include <cstdint>

namespace quopt::kernels::cuda {

template <class T>
void ema(T* v, const T* x, std::int64_t n, double a, double b, bool square);
template <class T>
void adam_direction(const T* m, const T* v, std::int64_t n, double c, double eps, T* out);
template <class T>
void add_diagonal(T* a, std::int64_t n, double value);
template <class T>
void scale_columns(T* a, std::int64_t rows, std::int64_t cols, const T* s);
template <class T>
double max_abs_minus_identity(const T* a, std::int64_t n);
template <class S, class D>
void convert(const S* src, std::int64_t n, D* dst);
template <class T>
void copy_block(const T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0, std::int64_t rows,
                std::int64_t cols, T* block);
template <class T>
void add_block(T* full, std::int64_t ld, std::int64_t row0, std::int64_t col0, std::int64_t rows,
               std::int64_t cols, const T* block, double alpha);
template <class T>
void gather(const T* a, std::int64_t rows, std::int64_t cols, const std::int64_t* idx, bool columns, T* out);
template <class T>
void column_dots(const T* a, const T* b, std::int64_t rows, std::int64_t cols, double* d);
template <class T>
int eigh_inplace(T* a, std::int64_t n, T* w);
template <class T>
int qr_inplace(T* a, std::int64_t m, std::int64_t n, T* r);

}  // namespace quopt::kernels::cuda
