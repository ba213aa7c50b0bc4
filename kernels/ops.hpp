#pragma once
// The kernel API: every compute op quopt uses, called with Tensors. Each function checks shapes,
// dtypes and devices, then dispatches to the backend the tensors live on:
//   kernels/host/  Kokkos parallel patterns + BLAS/LAPACK; fp32 and fp64 (fp64 for gradient checks)
//   kernels/cuda/  CUDA kernels + cuBLAS (built with QUOPT_ENABLE_CUDA)
// All tensors are contiguous row-major. Activations are [tokens, features]; linear weights are
// [out_features, in_features] (y = x W^T). Output arguments are written, except where a comment
// says "accumulated" (+=), which is how parameter gradients are summed over micro-batches.
#include <compare>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace quopt::kernels {

// ---- GEMM -----------------------------------------------------------------------------------
// c = alpha * op(a) @ op(b) + beta * c, with op(x) = x^T when trans_x. a, b, c 2-D.
void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha = 1.0,
            double beta = 0.0);
// Strided batched: a [batch, ., .], b [batch, ., .], c [batch, m, n]; each batch as matmul.
void matmul_batched(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                    double alpha = 1.0, double beta = 0.0);

// ---- embedding ----------------------------------------------------------------------------------
// out[i, :] = table[tokens[i], :]; tokens i32 [N], table [V, C], out [N, C].
void embedding_forward(const Tensor& tokens, const Tensor& table, Tensor& out);
// dtable[tokens[i], :] += dout[i, :] (accumulated). Deterministic order.
void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dtable);

// ---- RMSNorm over the last dimension ------------------------------------------------------------
// y = x / sqrt(mean(x^2) + eps) * weight; x, y [N, C]; weight [C]; rstd [N] saved for backward.
void rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps, Tensor& y, Tensor& rstd);
// dx written; dweight accumulated.
void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd, Tensor& dx,
                      Tensor& dweight);

// ---- rotary position embedding ---------------------------------------------------------------------
// In place on x [B, T, H, D] (D even), position = t. Rotate-half convention (GPT-NeoX / OLMo):
// pairs (i, i + D/2) rotated by angle t * theta^(-2i/D).
void rope_forward(Tensor& x, double theta);
// In place on dx: the transpose (inverse) rotation.
void rope_backward(Tensor& dx, double theta);

// ---- causal attention --------------------------------------------------------------------------------
// q [B, T, H, D], k, v [B, T, Hkv, D] with H % Hkv == 0 (grouped KV heads: head h reads kv head
// h / (H / Hkv)); out [B, T, H, D]; lse [B, H, T] = logsumexp of the scaled scores (saved for
// backward). Scores scaled by 1/sqrt(D); position t attends to positions <= t.
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse);
// dq, dk, dv written.
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, Tensor& dq, Tensor& dk, Tensor& dv);

// ---- MLP activations -------------------------------------------------------------------------------
// ReLU^2: y = max(x, 0)^2.
void relu2_forward(const Tensor& x, Tensor& y);
void relu2_backward(const Tensor& dy, const Tensor& x, Tensor& dx);
// SwiGLU: y = silu(gate) * up, silu(g) = g * sigmoid(g).
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& y);
void swiglu_backward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);

// ---- elementwise ---------------------------------------------------------------------------------------
// out = a + b (residual add; out may alias a or b).
void add(const Tensor& a, const Tensor& b, Tensor& out);
// y += alpha * x.
void axpy(double alpha, const Tensor& x, Tensor& y);
// x *= s.
void scale(Tensor& x, double s);
void fill(Tensor& x, double value);

// ---- loss ------------------------------------------------------------------------------------------------
// Softmax cross-entropy over the last dim of logits [N, V] with i32 targets [N]; a target < 0 is
// ignored. Writes per-token loss [N] (0 where ignored) and lse [N]. z-loss (PaLM; OLMo2 uses
// 1e-5): z_loss_coef * lse^2 per token, added to loss. Returns the sum of loss over counted tokens.
double cross_entropy_forward(const Tensor& logits, const Tensor& targets, double z_loss_coef, Tensor& loss,
                             Tensor& lse);
// dlogits = dscale * d(loss_i)/d(logits_i) for each counted token (0 rows for ignored ones);
// dlogits may alias logits. dscale is typically 1 / (number of counted tokens in the global batch).
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, double z_loss_coef,
                            double dscale, Tensor& dlogits);

// ---- fused classifier + cross-entropy ------------------------------------------------------------------
// The output layer and its loss without the [N, V] logits: x [N, C] (the final-norm output), the
// classifier weight w [V, C] (y = x w^T), i32 targets [N] (< 0: ignored, each < V). The logits are
// computed R rows at a time into work [R, V] (R >= 1 chosen by the caller; work is scratch, its
// contents are undefined afterwards), and per row, as cross_entropy_forward:
//   lse[i] = logsumexp_j logits[i, j],  loss[i] = lse[i] - logits[i, t_i] + z_loss_coef lse[i]^2
// (0 where ignored). When dx is defined, the same pass also computes the gradients of
// dscale * sum_i loss[i]:
//   dx = dscale * dL/dx [N, C] (written; 0 rows for ignored tokens),
//   dw += dscale * dL/dw [V, C] (accumulated; dw must then be defined, and undefined otherwise),
// exponentiating each logit once. Returns the sum of loss over counted tokens. x, w, loss, lse, dx,
// dw and work have one dtype (f32 or f64) and live on one device with targets (on the GPU, targets are
// not range-checked: the caller checks them before the upload). Results depend on R only through the
// order of sums over row blocks (dw's accumulation and the returned total); never on the thread count.
// llm.c's fused classifier (Karpathy) does the same on the GPU with the whole [N, V] block; here the GPU
// also works one block of R rows at a time.
double classifier_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets, double z_loss_coef,
                                double dscale, Tensor& loss, Tensor& lse, Tensor& dx, Tensor& dw, Tensor& work);

// ---- optimizer primitives -----------------------------------------------------------------------------
struct AdamWHyper {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
  std::int64_t step = 1;  // 1-based step used for bias correction
};
// PyTorch AdamW: p *= (1 - lr * wd); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h);
// Sum of squares in fp64 with a fixed reduction order (deterministic); the global gradient norm
// is sqrt of the sum over all gradient tensors.
double sum_squares(const Tensor& x);

// ---- Scion's linear minimisation oracles (LIONS-EPFL/scion scion.py) ---------------------------------
// out = f * sign(x) element-wise (0 where x is 0 or NaN): the Sign LMO. out may be x.
void sign_scaled(const Tensor& x, double f, Tensor& out);
// x 2-D [R, C] (1-D: one row). axis 1: each row divided by gain * rms(row) + eps; axis 0: each column by
// gain * rms(column) + eps; rms = sqrt(mean of squares), in fp64. The ColNorm and BiasRMS LMOs. out may
// be x.
void rms_normalize(const Tensor& x, int axis, double gain, double eps, Tensor& out);

// ---- gradient accumulation in fp64 ----------------------------------------------------------------
// acc (f64) += x (f32), then x = 0: folds one micro-batch's gradient into an fp64 accumulator.
void fold_f64(Tensor& x, Tensor& acc);
// x (f32) = acc rounded to f32, then acc = 0.
void unfold_f64(Tensor& acc, Tensor& x);

// ---- profiling ------------------------------------------------------------------------------------------
// GEMM work done through matmul/matmul_batched since the last reset (for `quopt bench`).
struct GemmStats {
  double flops = 0.0;
  double seconds = 0.0;
  std::int64_t calls = 0;
};
void gemm_stats_enable(bool on);
GemmStats gemm_stats();
void gemm_stats_reset();
// The distinct GEMM shapes recorded while statistics were enabled, with their call counts.
struct GemmShape {
  std::int64_t m = 0, n = 0, k = 0, batch = 1;
  bool trans_a = false, trans_b = false;
  auto operator<=>(const GemmShape&) const = default;
};
std::vector<std::pair<GemmShape, std::int64_t>> gemm_shape_counts();

}  // namespace quopt::kernels
