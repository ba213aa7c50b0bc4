// adamw_update: hyper-parameter and tensor checks, routing to host or CUDA.
#include <cmath>
#include <utility>

#include "kernels/dispatch.hpp"
#include "kernels/host/adamw.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/adamw.hpp"
#endif

namespace quopt::kernels {

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h) {
  constexpr const char* op = "adamw_update";
  detail::check_float(op, "param", param);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"grad", &grad}, {"m", &m}, {"v", &v}}) {
    detail::check_operand(op, "param", param, name, *t);
  }
  detail::check_no_overlap(op, "param", param, "grad", grad);
  detail::check_no_overlap(op, "param", param, "m", m);
  detail::check_no_overlap(op, "param", param, "v", v);
  detail::check_no_overlap(op, "m", m, "v", v);
  detail::check_no_overlap(op, "m", m, "grad", grad);
  detail::check_no_overlap(op, "v", v, "grad", grad);
  // The same validation as torch.optim.AdamW's constructor, plus the 1-based step.
  QUOPT_CHECK(std::isfinite(h.lr) && h.lr >= 0.0, op, ": lr = ", h.lr, " must be finite and >= 0");
  QUOPT_CHECK(h.beta1 >= 0.0 && h.beta1 < 1.0, op, ": beta1 = ", h.beta1, " must be in [0, 1)");
  QUOPT_CHECK(h.beta2 >= 0.0 && h.beta2 < 1.0, op, ": beta2 = ", h.beta2, " must be in [0, 1)");
  QUOPT_CHECK(std::isfinite(h.eps) && h.eps >= 0.0, op, ": eps = ", h.eps, " must be finite and >= 0");
  QUOPT_CHECK(std::isfinite(h.weight_decay) && h.weight_decay >= 0.0, op, ": weight_decay = ", h.weight_decay,
              " must be finite and >= 0");
  QUOPT_CHECK(h.step >= 1, op, ": step = ", h.step, " must be >= 1 (bias correction uses the 1-based step)");
  host::AdamWScalars s;
  s.lr = h.lr;
  s.beta1 = h.beta1;
  s.beta2 = h.beta2;
  s.eps = h.eps;
  s.weight_decay = h.weight_decay;
  s.bias_correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  s.bias_correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  QUOPT_ROUTE(op, param, adamw_update, param.data<T>(), grad.data<T>(), m.data<T>(), v.data<T>(),
              param.numel(), s);
}

}  // namespace quopt::kernels
