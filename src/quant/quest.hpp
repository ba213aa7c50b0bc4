#pragma once
// QuEST quantization-aware training (Panferov et al. 2025, arXiv 2502.05003; IST-DASLab/QuEST, the
// HalfHadamardTrustQuantizer its train.sh uses for weights and activations): the fake-quantized linear
//   y = Q(x H) Q(W H)^T
// with H the block-diagonal orthonormal Hadamard matrix on the input-feature dimension, Q the
// Gaussian-scaled centered grid (kernels::quest_quantize) and the trust-masked straight-through
// backward
//   dx = (mask_x * (dy Q(W H))) H,    dW += (mask_w * (dy^T Q(x H))) H      (H = H^T = H^-1).
// Without quantization (bits 0 on both sides) the product equals x W^T, since H H^T = I.
#include <cstdint>

#include "core/tensor.hpp"
#include "kernels/quant_ops.hpp"

namespace quopt {

struct QuestConfig {
  int weight_bits = 4;  // the study's QAT is W4A4 (arXiv 2509.23500); 0: rotate but do not quantize
  int act_bits = 4;     // W4A4 as above; 0: rotate but do not quantize
  std::int64_t hadamard_block = kernels::kHadamardBlock;  // 128 (IST-DASLab/QuEST aux_matrix)
  // Trust factors T (mask: |xq - x| <= T * rms); negative: the reference default alpha_b / (2^b - 1).
  double weight_trust = -1.0;
  double act_trust = -1.0;
};

// Throws quopt::Error (naming the field) unless bits are 0 or 1..8 and the block is a power of two.
void validate(const QuestConfig& cfg);

// What the backward needs from the forward, allocated (or reused when the shapes match) by the forward.
struct QuestLinearCache {
  Tensor xq;      // Q(x H) [N, in]
  Tensor x_mask;  // trust mask of x [N, in] (ones when act_bits == 0)
  Tensor wq;      // Q(W H) [out, in]
  Tensor w_mask;  // trust mask of W [out, in] (ones when weight_bits == 0)
};

// x [..., in] (viewed as [N, in]), w [out, in], y [..., out] written; same dtype (f32/f64), host.
void quest_linear_forward(const Tensor& x, const Tensor& w, const QuestConfig& cfg, Tensor& y,
                          QuestLinearCache& cache);

// dy like y; dx like x (written); dw like w (accumulated, like every parameter gradient in quopt).
void quest_linear_backward(const Tensor& dy, const QuestLinearCache& cache, const QuestConfig& cfg,
                           Tensor& dx, Tensor& dw);

// Rotates x [..., C] with the block Hadamard transform and fake-quantizes each row (QuEST's forward of
// one operand): xq = Q(x H); mask and scales (per row) written when defined. bits 0: xq = x H, mask 1.
void quest_rotate_quantize(const Tensor& x, int bits, double trust, std::int64_t hadamard_block, Tensor& xq,
                           Tensor& mask, Tensor& scales);

}  // namespace quopt
