#include "optim/adamw.hpp"

#include "kernels/ops.hpp"

namespace quopt {

AdamW::AdamW(const OptimizerConfig& cfg, ParameterSet& params) : cfg_(cfg) {
  for (auto& p : params.all()) {
    m_.push_back(Tensor::zeros(p.value.shape(), p.value.dtype(), p.value.device()));
    v_.push_back(Tensor::zeros(p.value.shape(), p.value.dtype(), p.value.device()));
    names_.push_back(p.name);
  }
}

void AdamW::step(ParameterSet& params, double lr) {
  ++steps_;
  std::size_t i = 0;
  for (auto& p : params.all()) {
    kernels::AdamWHyper h;
    h.lr = lr;
    h.beta1 = cfg_.adamw_beta1;
    h.beta2 = cfg_.adamw_beta2;
    h.eps = cfg_.adamw_eps;
    h.weight_decay = decays(cfg_, p.role) ? cfg_.weight_decay : 0.0;
    h.step = steps_;
    kernels::adamw_update(p.value, p.grad, m_[i], v_[i], h);
    ++i;
  }
}

std::vector<NamedTensor> AdamW::state() {
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    out.push_back({names_[i] + "/exp_avg", m_[i]});
    out.push_back({names_[i] + "/exp_avg_sq", v_[i]});
  }
  return out;
}

}  // namespace quopt
