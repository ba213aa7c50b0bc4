#pragma once
// How the linear layers inside the blocks (and the output projection) compute y = x W^T. By default
// exactly (one GEMM). A LinearQuant replaces that arithmetic for the layers it selects: QuEST fake
// quantization for QAT (quant/qat.hpp), per-token activation quantization for PTQ evaluation
// (quant/ptq.hpp). A LinearObserver sees every block linear layer's input and weight during a forward
// (calibration, recording).
#include <functional>
#include <memory>
#include <string>

#include "core/tensor.hpp"

namespace quopt {

// What a quantized linear keeps for its backward: whatever its implementation derives from this.
struct LinearCacheData {
  virtual ~LinearCacheData() = default;
};
struct LinearCache {
  std::shared_ptr<LinearCacheData> data;
};

class LinearQuant {
 public:
  virtual ~LinearQuant() = default;
  // `param` is the block parameter name (attn_q, attn_k, attn_v, attn_o, mlp_up, mlp_gate, mlp_down) or
  // "head" for the output projection (the tied embedding when tied).
  virtual bool applies(const std::string& param) const = 0;
  // y = f(x, W); x [N, in], w [out, in], y [N, out].
  virtual void forward(const Tensor& x, const Tensor& w, Tensor& y, LinearCache& cache) const = 0;
  // dx written (or accumulated when accumulate_dx), dw accumulated.
  virtual void backward(const Tensor& dy, const Tensor& x, const Tensor& w, const LinearCache& cache,
                        Tensor& dx, bool accumulate_dx, Tensor& dw) const = 0;
};

// Called with (block index, parameter name, input x [N, in], weight [out, in]) before each linear layer
// of the blocks runs (not for the head).
using LinearObserver =
    std::function<void(std::int64_t block, const std::string& param, const Tensor& x, const Tensor& w)>;

}  // namespace quopt
