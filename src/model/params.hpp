#pragma once
// Named model parameters with their gradients and roles. Names are "<layer>/<param>", e.g.
// "block.03/attn_q"; the same names are the HDF5 paths under /weights/ and in checkpoints.
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace quopt {

// How optimizers treat a parameter (each optimizer routes roles as its reference does).
enum class ParamRole { Hidden, Embedding, Head, Gain };
const char* role_name(ParamRole r);

struct Parameter {
  std::string name;  // "<layer>/<param>"
  ParamRole role = ParamRole::Hidden;
  Tensor value;
  Tensor grad;  // same shape; accumulated over micro-batches
  std::string layer() const;
  std::string param() const;
};

class ParameterSet {
 public:
  // Value and gradient allocated (zeroed) on dev.
  Parameter& add(const std::string& name, ParamRole role, const Shape& shape, DType dt,
                 Device dev = Device::Host);
  Parameter& get(const std::string& name);
  const Parameter& get(const std::string& name) const;
  bool contains(const std::string& name) const;
  std::deque<Parameter>& all() { return params_; }
  const std::deque<Parameter>& all() const { return params_; }
  std::int64_t numel() const;
  void zero_grads();

 private:
  std::deque<Parameter> params_;  // deque: references stay valid as parameters are added
};

}  // namespace quopt
