#pragma once
// Post-training quantization of a trained model for one scheme (quant/scheme.hpp): the weights of the
// selected block linears are replaced by their quantized values (RTN AbsMax, or GPTQ on calibration
// inputs), and with act_bits > 0 a LinearQuant quantizes each selected linear's input per token with
// the RTN AbsMax grid at inference (the paper's W4A4, arXiv 2509.23500). Embedding and head stay in
// full precision (the paper's setting; which block linears is [quant] layers).
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "model/linear.hpp"
#include "model/olmo2.hpp"
#include "quant/scheme.hpp"

namespace quopt {

// Per-token RTN AbsMax activation quantization in front of a (weight-quantized) linear: inference
// only; the backward is the straight-through estimator (dx = dy W, dW = dy^T Q(x)).
class ActQuantLinear : public LinearQuant {
 public:
  ActQuantLinear(int bits, std::set<std::string> layers);
  bool applies(const std::string& param) const override { return layers_.count(param) > 0; }
  void forward(const Tensor& x, const Tensor& w, Tensor& y, LinearCache& cache) const override;
  void backward(const Tensor& dy, const Tensor& x, const Tensor& w, const LinearCache& cache, Tensor& dx,
                bool accumulate_dx, Tensor& dw) const override;
  int bits() const { return bits_; }
  // Q(x): per-token fake quantization (x [N, in]).
  Tensor quantize(const Tensor& x) const;

 private:
  int bits_;
  std::set<std::string> layers_;
};

struct PtqOutcome {
  std::vector<NamedTensor> weight_error;  // "<layer>/<param>_error": W - Q(W)
  std::vector<NamedTensor> scales;        // "<layer>/<param>_scale"
};

// Throws quopt::Error, naming the layer, its width and the group sizes that would fit, unless `scheme`
// can quantize every selected block linear of a model of `cfg` (a group size must divide every selected
// layer's input width). Commands call it for all their schemes before they write anything.
void check_scheme_fits(const QuantScheme& scheme, const ModelConfig& cfg,
                       const std::vector<std::string>& layers);

// Quantizes `q` (a whole model holding the full-precision weights) in place for `scheme`. GPTQ
// calibrates block by block: the inputs of block i's linears are collected by running `q` (whose blocks
// < i are already quantized) over `calibration` (i32 [rows, T] batches), as GPTQ's sequential reference
// does per decoder layer. Returns the weight errors and scales for the run file.
PtqOutcome quantize_model(Olmo2& q, const QuantScheme& scheme, const std::vector<std::string>& layers,
                          const std::vector<Tensor>& calibration);

}  // namespace quopt
