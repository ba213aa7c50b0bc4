#include "optim/optimizer.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "io/run_config.hpp"
#include "optim/adamw.hpp"
#include "optim/muon.hpp"
#include "optim/psgd_kron.hpp"
#include "optim/scion.hpp"
#include "optim/shampoo.hpp"
#include "optim/soap.hpp"

namespace quopt {

void add_optimizer_keys(Schema& s) {
  add_muon_keys(s);
  add_scion_keys(s);
  add_psgd_keys(s);
  add_shampoo_keys(s);
  add_soap_keys(s);
}

bool decays(const OptimizerConfig& cfg, ParamRole role) {
  const std::string r = role_name(role);
  // The head shares the "embedding" role name in configs (tied or not, it is the vocabulary matrix).
  const std::string key = role == ParamRole::Head ? "embedding" : r;
  return std::find(cfg.decay_roles.begin(), cfg.decay_roles.end(), key) != cfg.decay_roles.end();
}

OptimizerReport Optimizer::report() const {
  OptimizerReport r = stats_;
  r.state_bytes = state_bytes(const_cast<Optimizer*>(this)->state());
  return r;
}

std::vector<Parameter*> checked_params(const char* who, ParameterSet& params,
                                       const std::vector<std::string>& names,
                                       const std::vector<Shape>& shapes) {
  auto& all = params.all();
  QUOPT_CHECK(all.size() == names.size(), who, ": built for ", names.size(), " parameters, stepped with ",
              all.size());
  std::vector<Parameter*> ps;
  for (std::size_t i = 0; i < all.size(); ++i) {
    QUOPT_CHECK(all[i].name == names[i] && all[i].value.shape() == shapes[i], who, ": parameter ", i, " is ",
                all[i].name, " ", all[i].value.describe(), "; the optimizer was built for ", names[i], " ",
                shape_str(shapes[i]));
    ps.push_back(&all[i]);
  }
  return ps;
}

std::int64_t state_bytes(const std::vector<NamedTensor>& state) {
  std::int64_t n = 0;
  for (const auto& s : state) n += static_cast<std::int64_t>(s.tensor.nbytes());
  return n;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, ParameterSet& params,
                                          const OptimizerContext& ctx) {
  // AdamW (fused kernel), Muon and Scion (Newton-Schulz by GEMMs, LMO kernels), Shampoo and SOAP (cuSOLVER
  // eigendecompositions and QR, optim_ops kernels) and PSGD-Kron (triangular products and solves, psgd_ops
  // kernels) run every step through the kernel API, so on the device the parameters live on.
  if (cfg.name == "adamw") return std::make_unique<AdamW>(cfg, params);
  if (cfg.name == "muon") return make_muon(cfg, params, ctx);
  if (cfg.name == "scion") return make_scion(cfg, params, ctx);
  if (cfg.name == "psgd") return make_psgd(cfg, params, ctx);
  if (cfg.name == "shampoo") return make_shampoo(cfg, params, ctx);
  if (cfg.name == "soap") return make_soap(cfg, params, ctx);
  fail("optimizer.name = \"", cfg.name, "\" is unknown; available: adamw, muon, scion, shampoo, soap, psgd");
}

}  // namespace quopt
