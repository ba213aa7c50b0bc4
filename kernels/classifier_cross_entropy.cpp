// The fused classifier + cross-entropy (kernels/ops.hpp): checks, then per block of rows a GEMM into
// the work rows, the row pass and, with gradients, the two backward GEMMs. The GEMMs go through matmul
// (cuBLASLt on the GPU; `quopt bench` counts them); the row pass is the host's
// (kernels/host/cross_entropy.cpp) or the CUDA kernel (kernels/cuda/cross_entropy.cu), which keeps each
// row's fp64 loss on the device and sums them once after the last block, so the blocks queue without a
// wait. Only one block of logits [R, V] exists at a time, on either device.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "kernels/dispatch.hpp"
#include "kernels/host/cross_entropy.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/cross_entropy.hpp"
#endif

namespace quopt::kernels {

namespace {
using Named = std::pair<const char*, const Tensor*>;
}  // namespace

double classifier_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets, double z_loss_coef,
                                double dscale, Tensor& loss, Tensor& lse, Tensor& dx, Tensor& dw, Tensor& work) {
  constexpr const char* op = "classifier_cross_entropy";
  detail::check_float(op, "x", x);
  detail::check_ndim(op, "x", x, 2);
  detail::check_like(op, "x", x, "w", w);
  detail::check_ndim(op, "w", w, 2);
  const std::int64_t n = x.dim(0), c = x.dim(1), vocab = w.dim(0);
  QUOPT_CHECK(w.dim(1) == c, op, ": w is ", w.describe(), " but x is ", x.describe(),
              "; w must be [V, C] with C = x's columns");
  QUOPT_CHECK(vocab > 0, op, ": w is ", w.describe(), "; the vocabulary dimension V must be positive");
  detail::check_dtype(op, "targets", targets, DType::I32);
  detail::check_device(op, "x", x, "targets", targets);
  detail::check_shape(op, "targets", targets, {n});
  const std::int32_t* tg = targets.data<std::int32_t>();
  // Device targets are checked by whoever uploads them (the model checks its batch on the host first).
  for (std::int64_t i = 0; targets.is_host() && i < n; ++i) {
    QUOPT_CHECK(tg[i] < vocab, op, ": targets[", i, "] = ", tg[i], " is out of range for w ", w.describe(),
                "; targets must be < V = ", vocab, " (or negative to ignore the token)");
  }
  for (const auto& [name, t] : {Named{"loss", &loss}, {"lse", &lse}}) {
    detail::check_like(op, "x", x, name, *t);
    detail::check_shape(op, name, *t, {n});
  }
  detail::check_like(op, "x", x, "work", work);
  detail::check_ndim(op, "work", work, 2);
  QUOPT_CHECK(work.dim(0) >= 1 && work.dim(1) == vocab, op, ": work is ", work.describe(), "; expected [R, ",
              vocab, "] with R >= 1 rows");
  const bool grad = dx.defined();
  QUOPT_CHECK(grad == dw.defined(), op, ": dx is ", dx.describe(), " and dw is ", dw.describe(),
              "; pass both (gradients) or neither (loss only)");
  if (grad) {
    detail::check_like(op, "x", x, "dx", dx);
    detail::check_shape(op, "dx", dx, x.shape());
    detail::check_like(op, "x", x, "dw", dw);
    detail::check_shape(op, "dw", dw, w.shape());
    detail::check_no_overlap(op, "dx", dx, "x", x);
  }
  for (const auto& [name, t] : {Named{"x", &x}, {"w", &w}, {"loss", &loss}, {"lse", &lse}, {"dx", &dx}, {"dw", &dw}})
    detail::check_no_overlap(op, "work", work, name, *t);

  const std::int64_t rows = work.dim(0);
  // On the GPU: every row's loss in fp64, summed after the last block.
  [[maybe_unused]] Tensor row_loss;
  if (!x.is_host()) row_loss = Tensor::empty({n}, DType::F64, x.device());
  double total = 0.0;
  for (std::int64_t r0 = 0; r0 < n; r0 += rows) {
    const std::int64_t m = std::min(rows, n - r0);
    const Tensor xb = x.slice(r0, r0 + m);
    Tensor logits = work.slice(0, m);
    matmul(xb, false, w, true, logits);
    total += detail::run(
        op, x,
        [&](auto tag) {
          using T = decltype(tag);
          T *lp = logits.data<T>(), *lo = loss.data<T>() + r0, *ls = lse.data<T>() + r0;
          return grad ? host::cross_entropy_forward_backward<T>(lp, tg + r0, m, vocab, z_loss_coef, dscale, lo, ls)
                      : host::cross_entropy_forward<T>(lp, tg + r0, m, vocab, z_loss_coef, lo, ls);
        },
        [&]([[maybe_unused]] auto tag) {
          QUOPT_IF_CUDA(using T = decltype(tag);
                        T *lp = logits.data<T>(), *lo = loss.data<T>() + r0, *ls = lse.data<T>() + r0;
                        double* rl = row_loss.data<double>() + r0;
                        if (grad) cuda::cross_entropy_forward_backward_rows<T>(lp, tg + r0, m, vocab, z_loss_coef,
                                                                               dscale, lo, ls, rl);
                        else cuda::cross_entropy_forward_rows<T>(lp, tg + r0, m, vocab, z_loss_coef, lo, ls, rl);)
          return 0.0;
        });
    if (grad) {
      Tensor dxb = dx.slice(r0, r0 + m);
      matmul(logits, false, w, false, dxb);
      matmul(logits, true, xb, false, dw, 1.0, 1.0);
    }
  }
  QUOPT_IF_CUDA(if (!x.is_host()) total = cuda::sum_row_losses(row_loss.data<double>(), n);)
  return total;
}

}  // namespace quopt::kernels
