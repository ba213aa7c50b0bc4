#include "quant/ptq.hpp"

#include <map>
#include <numeric>

#include "core/error.hpp"
#include "kernels/ops.hpp"
#include "kernels/quant_ops.hpp"
#include "quant/gptq.hpp"

namespace quopt {

ActQuantLinear::ActQuantLinear(int bits, std::set<std::string> layers)
    : bits_(bits), layers_(std::move(layers)) {
  QUOPT_CHECK(bits >= kernels::kRtnMinBits && bits <= kernels::kRtnMaxBits, "activation bits ", bits,
              " outside [", kernels::kRtnMinBits, ", ", kernels::kRtnMaxBits, "]");
}

Tensor ActQuantLinear::quantize(const Tensor& x) const {
  Tensor xq = Tensor::empty(x.shape(), x.dtype()), scales = Tensor::empty({x.dim(0)}, x.dtype());
  kernels::rtn_quantize(x, bits_, 0, xq, scales);
  return xq;
}

namespace {
struct ActData : LinearCacheData {
  Tensor xq;
};
}  // namespace

void ActQuantLinear::forward(const Tensor& x, const Tensor& w, Tensor& y, LinearCache& cache) const {
  auto d = std::make_shared<ActData>();
  d->xq = quantize(x);
  kernels::matmul(d->xq, false, w, true, y);
  cache.data = std::move(d);
}

void ActQuantLinear::backward(const Tensor& dy, const Tensor&, const Tensor& w, const LinearCache& cache,
                              Tensor& dx, bool accumulate_dx, Tensor& dw) const {
  const auto* d = dynamic_cast<const ActData*>(cache.data.get());
  QUOPT_CHECK(d, "activation-quantized linear: backward without its forward");
  kernels::matmul(dy, false, w, false, dx, 1.0, accumulate_dx ? 1.0 : 0.0);
  kernels::matmul(dy, true, d->xq, false, dw, 1.0, 1.0);
}

void check_scheme_fits(const QuantScheme& scheme, const ModelConfig& cfg,
                       const std::vector<std::string>& layers) {
  if (scheme.group_size == 0) return;
  const std::set<std::string> selected(layers.begin(), layers.end());
  std::int64_t common = 0;  // gcd of the selected widths: the group sizes that fit all are its divisors
  const ParamSpec* bad = nullptr;
  const auto specs = olmo2_param_specs(cfg);
  for (const auto& p : specs) {
    const auto slash = p.name.find('/');
    if (p.name.rfind("block.", 0) != 0 || !selected.count(p.name.substr(slash + 1))) continue;
    const std::int64_t in = p.shape.at(1);
    common = std::gcd(common, in);
    if (!bad && in % scheme.group_size != 0) bad = &p;
  }
  if (!bad) return;
  std::string fits;
  for (std::int64_t g = 1; g <= common; g *= 2)
    if (common % g == 0) fits += (fits.empty() ? "" : ", ") + std::to_string(g);
  fail("quantization scheme '", scheme.name, "': group size ", scheme.group_size, " does not divide the ",
       bad->shape.at(1), " input columns of ", bad->name, " (every group must be whole); group sizes ",
       "that divide every quantized layer's width (d_model = ", cfg.d_model, ", MLP width ", cfg.mlp_hidden(),
       ") are the divisors of ", common, ", e.g. ", fits, "; or drop the g<size> part for one scale per row");
}

PtqOutcome quantize_model(Olmo2& q, const QuantScheme& scheme, const std::vector<std::string>& layers,
                          const std::vector<Tensor>& calibration) {
  const std::set<std::string> selected(layers.begin(), layers.end());
  const ModelConfig& cfg = q.config();
  PtqOutcome out;
  auto record = [&](const Parameter& p, const Tensor& wq, const Tensor& scales) {
    Tensor err = p.value.clone();
    kernels::axpy(-1.0, wq, err);  // W - Q(W)
    out.weight_error.push_back({p.name + "_error", err});
    out.scales.push_back({p.name + "_scale", scales});
  };
  for (std::int64_t b = 0; b < cfg.n_layers; ++b) {
    const std::string prefix = block_name(b) + "/";
    std::vector<Parameter*> targets;
    for (auto& p : q.params().all())
      if (p.name.rfind(prefix, 0) == 0 && selected.count(p.param())) targets.push_back(&p);
    if (scheme.method == QuantMethod::Rtn) {
      for (Parameter* p : targets) {
        const std::int64_t groups = scheme.group_size ? p->value.dim(1) / scheme.group_size : 1;
        Tensor wq = Tensor::empty(p->value.shape(), p->value.dtype());
        Tensor scales = Tensor::empty(
            scheme.group_size ? Shape{p->value.dim(0), groups} : Shape{p->value.dim(0)}, p->value.dtype());
        kernels::rtn_quantize(p->value, scheme.weight_bits, scheme.group_size, wq, scales);
        record(*p, wq, scales);
        p->value.copy_from(wq);
      }
      continue;
    }
    // GPTQ: collect this block's linear inputs with the blocks before it already quantized.
    QUOPT_CHECK(!calibration.empty(), "GPTQ needs calibration batches (quant.calibration_batches)");
    std::map<std::string, GptqHessian> hessians;
    for (Parameter* p : targets) hessians.emplace(p->param(), GptqHessian(p->value.dim(1)));
    q.set_linear_observer([&](std::int64_t blk, const std::string& param, const Tensor& x, const Tensor&) {
      if (blk != b) return;
      auto it = hessians.find(param);
      if (it != hessians.end()) it->second.add_batch(x);
    });
    for (const Tensor& tokens : calibration) {
      Activations act;
      q.forward(tokens, Tensor::zeros(tokens.shape(), DType::I32), act);  // the loss is not used
    }
    q.set_linear_observer(nullptr);
    GptqOptions opt;
    opt.bits = scheme.weight_bits;
    opt.group_size = scheme.group_size;
    for (Parameter* p : targets) {
      const GptqResult r = gptq_quantize(p->value, hessians.at(p->param()).matrix(), opt);
      record(*p, r.weight, r.scales);
      p->value.copy_from(r.weight);
    }
  }
  if (scheme.act_bits > 0) q.set_linear_quant(std::make_shared<ActQuantLinear>(scheme.act_bits, selected));
  return out;
}

}  // namespace quopt
