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
  OptimizerReport r;
  r.state_bytes = state_bytes(const_cast<Optimizer*>(this)->state());
  return r;
}

std::int64_t state_bytes(const std::vector<NamedTensor>& state) {
  std::int64_t n = 0;
  for (const auto& s : state) n += static_cast<std::int64_t>(s.tensor.nbytes());
  return n;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, ParameterSet& params,
                                          const OptimizerContext& ctx) {
  if (cfg.name == "adamw") return std::make_unique<AdamW>(cfg, params);
  if (cfg.name == "muon") return make_muon(cfg, params, ctx);
  if (cfg.name == "scion") return make_scion(cfg, params, ctx);
  if (cfg.name == "psgd") return make_psgd(cfg, params, ctx);
  if (cfg.name == "shampoo") return make_shampoo(cfg, params, ctx);
  if (cfg.name == "soap") return make_soap(cfg, params, ctx);
  fail("optimizer.name = \"", cfg.name, "\" is unknown; available: adamw, muon, scion, shampoo, soap, psgd");
}

}  // namespace quopt
