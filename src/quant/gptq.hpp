#pragma once
// GPTQ (Frantar et al. 2023, arXiv 2210.17323; IST-DASLab/gptq gptq.py GPTQ.fasterquant): quantizes
// the columns of W [out, in] one at a time in the order of a calibration Hessian H = 2 X^T X / tokens,
// feeding each column's rounding error forward to the not yet quantized columns through the upper
// Cholesky factor of H^-1, in blocks of columns with lazy batch updates. The grid is quopt's RTN
// AbsMax grid (kernels/quant_ops.hpp), so gptq-w4 and rtn-w4 differ only in the error feedback.
// Host only; computed in fp64 whatever the dtype of W. Details and deviations: docs/quantization.md.
#include <cstdint>

#include "core/tensor.hpp"

namespace quopt {

struct GptqOptions {
  int bits = 4;                   // the study's 4-bit PTQ (arXiv 2509.23500)
  std::int64_t group_size = 0;    // 0: one scale per output row (fasterquant groupsize=-1)
  std::int64_t block_size = 128;  // fasterquant(blocksize=128)
  double percdamp = 0.01;         // fasterquant(percdamp=.01): damp = 1% of the mean diagonal of H
  bool act_order = false;         // fasterquant(actorder=False); true: columns by decreasing diag(H)
};

// Throws quopt::Error (naming the option) for bits outside 2..8, a negative group size, a block size
// < 1 or a negative / non-finite percdamp.
void validate(const GptqOptions& opt);

struct GptqResult {
  Tensor weight;    // Q(W) dequantized, W's shape and dtype
  Tensor scales;    // W's dtype: [out] per row, [out, in / group_size] per group (groups in the order
                    // the columns were quantized: with act_order, group j holds permuted columns j*g..)
  double loss = 0;  // the reference's error sum_{r,j} (w - q)^2 / (2 [H^-1 chol]_jj^2)
};

// Running H = 2 / tokens * sum_t x_t x_t^T over calibration batches (GPTQ.add_batch, here with the
// number of tokens as the sample count; GPTQ's result does not depend on the scale of H).
class GptqHessian {
 public:
  explicit GptqHessian(std::int64_t in_features);
  // x [..., in_features], f32 or f64, host.
  void add_batch(const Tensor& x);
  const Tensor& matrix() const { return h_; }  // f64 [in, in]
  std::int64_t tokens() const { return tokens_; }

 private:
  Tensor h_;
  std::int64_t tokens_ = 0;
};

// GPTQ of w [out, in] (f32/f64, host) with the Hessian h [in, in] (f32/f64, host, symmetric positive
// semi-definite; dead inputs with h_jj == 0 are allowed).
GptqResult gptq_quantize(const Tensor& w, const Tensor& h, const GptqOptions& opt);

// The same with H built from calibration inputs x [tokens, in] (the layer's inputs).
GptqResult gptq_quantize_calibrated(const Tensor& w, const Tensor& x, const GptqOptions& opt);

}  // namespace quopt
