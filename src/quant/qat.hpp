#pragma once
// Quantization-aware training with QuEST (quant/quest.hpp): a LinearQuant that fake-quantizes the
// weights and input activations of the selected block linears (and of the output projection, "head",
// with quant.qat_head) in the forward and applies the trust-masked straight-through gradient in the
// backward.
#include <memory>
#include <set>
#include <string>

#include "io/run_config.hpp"
#include "model/linear.hpp"
#include "quant/quest.hpp"

namespace quopt {

class QuestLinear : public LinearQuant {
 public:
  QuestLinear(QuestConfig cfg, std::set<std::string> layers);
  bool applies(const std::string& param) const override { return layers_.count(param) > 0; }
  void forward(const Tensor& x, const Tensor& w, Tensor& y, LinearCache& cache) const override;
  void backward(const Tensor& dy, const Tensor& x, const Tensor& w, const LinearCache& cache, Tensor& dx,
                bool accumulate_dx, Tensor& dw) const override;
  const QuestConfig& config() const { return cfg_; }

 private:
  QuestConfig cfg_;
  std::set<std::string> layers_;
};

// The QAT quantizer a config asks for ([quant] qat, layers, qat_head, bits, ...), or nullptr for "none".
std::shared_ptr<const LinearQuant> make_qat(const QuantConfig& q);

}  // namespace quopt
