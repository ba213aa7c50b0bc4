// fold_f64 / unfold_f64: checks and routing to host or CUDA.
#include "kernels/host/accumulate.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/accumulate.hpp"
#endif

namespace quopt::kernels {

namespace {
void check_fold(const char* op, const Tensor& x, const Tensor& acc) {
  detail::check_dtype(op, "x", x, DType::F32);
  detail::check_dtype(op, "acc", acc, DType::F64);
  detail::check_device(op, "x", x, "acc", acc);
  detail::check_same_numel(op, "x", x, "acc", acc);
}
}  // namespace

void fold_f64(Tensor& x, Tensor& acc) {
  constexpr const char* op = "fold_f64";
  check_fold(op, x, acc);
  QUOPT_ROUTE(op, x, fold_f64, x.data<float>(), acc.data<double>(), x.numel());
}

void unfold_f64(Tensor& acc, Tensor& x) {
  constexpr const char* op = "unfold_f64";
  check_fold(op, x, acc);
  QUOPT_ROUTE(op, x, unfold_f64, acc.data<double>(), x.data<float>(), x.numel());
}

}  // namespace quopt::kernels
