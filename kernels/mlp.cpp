// relu2_* / swiglu_*: checks and routing to host or CUDA.
#include "kernels/host/mlp.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/mlp.hpp"
#endif

namespace quopt::kernels {

using detail::check_operand;

void relu2_forward(const Tensor& x, Tensor& y) {
  constexpr const char* op = "relu2_forward";
  detail::check_float(op, "x", x);
  check_operand(op, "x", x, "y", y);
  QUOPT_ROUTE(op, x, relu2_forward, x.data<T>(), y.data<T>(), x.numel());
}

void relu2_backward(const Tensor& dy, const Tensor& x, Tensor& dx) {
  constexpr const char* op = "relu2_backward";
  detail::check_float(op, "x", x);
  check_operand(op, "x", x, "dy", dy);
  check_operand(op, "x", x, "dx", dx);
  QUOPT_ROUTE(op, x, relu2_backward, dy.data<T>(), x.data<T>(), dx.data<T>(), x.numel());
}

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& y) {
  constexpr const char* op = "swiglu_forward";
  detail::check_float(op, "gate", gate);
  check_operand(op, "gate", gate, "up", up);
  check_operand(op, "gate", gate, "y", y);
  QUOPT_ROUTE(op, gate, swiglu_forward, gate.data<T>(), up.data<T>(), y.data<T>(), gate.numel());
}

void swiglu_backward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  constexpr const char* op = "swiglu_backward";
  detail::check_float(op, "gate", gate);
  check_operand(op, "gate", gate, "up", up);
  check_operand(op, "gate", gate, "dy", dy);
  check_operand(op, "gate", gate, "dgate", dgate);
  check_operand(op, "gate", gate, "dup", dup);
  detail::check_no_overlap(op, "dgate", dgate, "dup", dup);
  QUOPT_ROUTE(op, gate, swiglu_backward, dy.data<T>(), gate.data<T>(), up.data<T>(), dgate.data<T>(),
              dup.data<T>(), gate.numel());
}

}  // namespace quopt::kernels
