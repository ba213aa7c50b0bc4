#include "quant/qat.hpp"

#include "core/error.hpp"
#include "kernels/ops.hpp"

namespace quopt {

namespace {
struct QuestData : LinearCacheData {
  QuestLinearCache c;
};
}  // namespace

QuestLinear::QuestLinear(QuestConfig cfg, std::set<std::string> layers)
    : cfg_(cfg), layers_(std::move(layers)) {
  validate(cfg_);
}

void QuestLinear::forward(const Tensor& x, const Tensor& w, Tensor& y, LinearCache& cache) const {
  auto d = std::make_shared<QuestData>();
  quest_linear_forward(x, w, cfg_, y, d->c);
  cache.data = std::move(d);
}

void QuestLinear::backward(const Tensor& dy, const Tensor&, const Tensor&, const LinearCache& cache,
                           Tensor& dx, bool accumulate_dx, Tensor& dw) const {
  const auto* d = dynamic_cast<const QuestData*>(cache.data.get());
  QUOPT_CHECK(d, "QuEST backward without its forward");
  if (!accumulate_dx) {
    quest_linear_backward(dy, d->c, cfg_, dx, dw);
    return;
  }
  Tensor tmp = Tensor::empty(dx.shape(), dx.dtype(), dx.device());
  quest_linear_backward(dy, d->c, cfg_, tmp, dw);
  kernels::axpy(1.0, tmp, dx);
}

std::shared_ptr<const LinearQuant> make_qat(const QuantConfig& q) {
  if (q.qat == "none") return nullptr;
  QUOPT_CHECK(q.qat == "quest", "quant.qat = \"", q.qat, "\" is not supported; use none or quest");
  QuestConfig c;
  c.weight_bits = static_cast<int>(q.weight_bits);
  c.act_bits = static_cast<int>(q.act_bits);
  c.hadamard_block = q.hadamard_block;
  if (q.trust_factor > 0) c.weight_trust = c.act_trust = q.trust_factor;
  std::set<std::string> layers(q.layers.begin(), q.layers.end());
  if (q.qat_head) layers.insert("head");
  return std::make_shared<QuestLinear>(c, std::move(layers));
}

}  // namespace quopt
