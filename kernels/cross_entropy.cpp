// Public softmax cross-entropy ops: shape/dtype/device checks and target validation, then dispatch
// to the host backend (kernels/host/cross_entropy.cpp) or the CUDA backend (kernels/cuda/cross_entropy.cu).
// Targets are range-checked here when they live on the host; device targets are checked by whoever
// uploads them (the model checks its batch on the host first).
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "core/error.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/host/cross_entropy.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/cross_entropy.hpp"
#endif

namespace quopt::kernels {
namespace {

using Named = std::pair<const char*, const Tensor*>;

void check_defined_same_device(const char* op, std::initializer_list<Named> tensors) {
  for (const auto& [name, t] : tensors) {
    if (!t->defined()) fail(op, ": tensor '", name, "' is undefined; allocate it before calling ", op);
    if (t->device() != tensors.begin()->second->device()) {
      fail(op, ": '", name, "' is ", t->describe(), " but '", tensors.begin()->first, "' is ",
           tensors.begin()->second->describe(), "; all cross-entropy tensors must live on the same device");
    }
  }
}

// Checks logits [N, V] (f32/f64, V > 0) and targets i32 [N] with every target < V; returns {N, V}.
std::pair<std::int64_t, std::int64_t> check_logits_targets(const char* op, const Tensor& logits,
                                                           const Tensor& targets) {
  if (logits.ndim() != 2) fail(op, ": logits is ", logits.describe(), ", expected 2-D [N, V]");
  if (logits.dtype() != DType::F32 && logits.dtype() != DType::F64) {
    fail(op, ": logits is ", logits.describe(), "; cross-entropy supports f32 and f64 logits only");
  }
  const std::int64_t n = logits.dim(0), vocab = logits.dim(1);
  if (vocab <= 0)
    fail(op, ": logits is ", logits.describe(), "; the vocabulary dimension V must be positive");
  if (targets.dtype() != DType::I32 || targets.shape() != Shape{n}) {
    fail(op, ": targets is ", targets.describe(), ", expected i32", shape_str({n}),
         " (one target per logits row)");
  }
  if (!targets.is_host()) return {n, vocab};
  const std::int32_t* t = targets.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    if (t[i] >= vocab) {
      fail(op, ": targets[", i, "] = ", t[i], " is out of range for logits ", logits.describe(),
           "; targets must be < V = ", vocab, " (or negative to ignore the token)");
    }
  }
  return {n, vocab};
}

void check_like(const char* op, const char* name, const Tensor& t, const Tensor& logits, const Shape& want) {
  if (t.dtype() != logits.dtype() || t.shape() != want) {
    fail(op, ": '", name, "' is ", t.describe(), ", expected ", dtype_name(logits.dtype()), shape_str(want),
         " (same dtype as logits ", logits.describe(), ")");
  }
}

}  // namespace

double cross_entropy_forward(const Tensor& logits, const Tensor& targets, double z_loss_coef, Tensor& loss,
                             Tensor& lse) {
  const char* op = "cross_entropy_forward";
  check_defined_same_device(op, {{"logits", &logits}, {"targets", &targets}, {"loss", &loss}, {"lse", &lse}});
  const auto [n, vocab] = check_logits_targets(op, logits, targets);
  check_like(op, "loss", loss, logits, {n});
  check_like(op, "lse", lse, logits, {n});
  return QUOPT_ROUTE(op, logits, cross_entropy_forward, logits.data<T>(), targets.data<std::int32_t>(), n,
                     vocab, z_loss_coef, loss.data<T>(), lse.data<T>());
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            double z_loss_coef, double dscale, Tensor& dlogits) {
  const char* op = "cross_entropy_backward";
  check_defined_same_device(
      op, {{"logits", &logits}, {"targets", &targets}, {"lse", &lse}, {"dlogits", &dlogits}});
  const auto [n, vocab] = check_logits_targets(op, logits, targets);
  check_like(op, "lse", lse, logits, {n});
  check_like(op, "dlogits", dlogits, logits, logits.shape());
  QUOPT_ROUTE(op, logits, cross_entropy_backward, logits.data<T>(), targets.data<std::int32_t>(),
              lse.data<T>(), n, vocab, z_loss_coef, dscale, dlogits.data<T>());
}

}  // namespace quopt::kernels
