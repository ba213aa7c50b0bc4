#include "optim/muon.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/ops.hpp"
#include "optim/newton_schulz.hpp"

namespace quopt {

namespace {

constexpr const char* kRef = "KellerJordan/Muon muon.py @857d1ad";

}  // namespace

void add_muon_keys(Schema& s) {
  const MuonOptions d;
  s.add(exclusive_max(
      float_key("optimizer.muon.momentum", d.momentum, 0.0, 1.0,
                cat("momentum mu of buf = mu buf + g; 0.95 as ", kRef, " (Muon(momentum=0.95))"))));
  s.add(bool_key("optimizer.muon.nesterov", d.nesterov,
                 cat("Nesterov update g + mu buf instead of buf; true as ", kRef, " (muon_update)")));
  s.add(int_key("optimizer.muon.ns_steps", d.ns_steps, 1.0, std::nullopt,
                cat("Newton-Schulz iterations of the orthogonalisation; 5 as ", kRef, " (muon_update)")));
  s.add(exclusive_min(
      float_key("optimizer.muon.adam_lr", d.adam_lr, 0.0, std::nullopt,
                cat("peak lr of the AdamW side optimizer (embedding, untied head, gains); follows the "
                    "schedule as adam_lr * lr / optimizer.lr; 3e-4 as ",
                    kRef, " (MuonWithAuxAdam)"))));
  s.add(exclusive_max(float_key("optimizer.muon.adam_beta1", d.adam_beta1, 0.0, 1.0,
                                cat("AdamW side optimizer beta1; 0.9 as ", kRef, " (MuonWithAuxAdam)"))));
  s.add(exclusive_max(float_key("optimizer.muon.adam_beta2", d.adam_beta2, 0.0, 1.0,
                                cat("AdamW side optimizer beta2; 0.95 as ", kRef, " (MuonWithAuxAdam)"))));
  s.add(exclusive_min(float_key("optimizer.muon.adam_eps", d.adam_eps, 0.0, std::nullopt,
                                cat("AdamW side optimizer epsilon; 1e-10 as ", kRef, " (MuonWithAuxAdam)"))));
  s.add(float_key("optimizer.muon.adam_weight_decay", d.adam_weight_decay, 0.0, std::nullopt,
                  cat("decoupled weight decay of the AdamW side parameters whose role optimizer.decay_roles "
                      "names; 0 as ",
                      kRef, " (MuonWithAuxAdam)")));
}

MuonOptions muon_options(const Config& cfg) {
  MuonOptions o;
  o.momentum = cfg.get_float("optimizer.muon.momentum");
  o.nesterov = cfg.get_bool("optimizer.muon.nesterov");
  o.ns_steps = static_cast<int>(cfg.get_int("optimizer.muon.ns_steps"));
  o.adam_lr = cfg.get_float("optimizer.muon.adam_lr");
  o.adam_beta1 = cfg.get_float("optimizer.muon.adam_beta1");
  o.adam_beta2 = cfg.get_float("optimizer.muon.adam_beta2");
  o.adam_eps = cfg.get_float("optimizer.muon.adam_eps");
  o.adam_weight_decay = cfg.get_float("optimizer.muon.adam_weight_decay");
  return o;
}

Muon::Muon(const OptimizerConfig& cfg, const MuonOptions& opt, ParameterSet& params, MPI_Comm comm)
    : cfg_(cfg), opt_(opt) {
  QUOPT_CHECK(cfg.lr > 0.0, "muon: optimizer.lr = ", cfg.lr,
              " must be > 0 (the side AdamW lr is scaled by lr / optimizer.lr)");
  QUOPT_CHECK(opt.ns_steps >= 1, "muon: optimizer.muon.ns_steps = ", opt.ns_steps, " must be >= 1");
  std::vector<WorkItem> items;
  std::size_t idx = 0;
  for (auto& p : params.all()) {
    names_.push_back(p.name);
    if (p.role == ParamRole::Hidden) {
      QUOPT_CHECK(p.value.ndim() == 2 && p.value.dtype() == DType::F32, "muon: hidden parameter ", p.name,
                  " is ", p.value.describe(), "; Muon orthogonalises 2-D f32 matrices");
      const std::int64_t rows = p.value.dim(0), cols = p.value.dim(1);
      Matrix m;
      m.param = idx;
      // KellerJordan/Muon muon_update: update *= max(1, rows / cols) ** 0.5.
      m.shape_scale = std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols)));
      matrices_.push_back(m);
      items.push_back({p.name, newton_schulz_flops(rows, cols, opt.ns_steps), p.value.shape()});
    } else {
      Side s;
      s.param = idx;
      s.m = Tensor::zeros(p.value.shape(), p.value.dtype(), p.value.device());
      s.v = Tensor::zeros(p.value.shape(), p.value.dtype(), p.value.device());
      side_.push_back(std::move(s));
    }
    ++idx;
  }
  plan_ = ShardPlan(comm, std::move(items));
  stats_.balance = plan_.balance();
  for (std::size_t i = 0; i < matrices_.size(); ++i) {
    const Tensor& w = params.all()[matrices_[i].param].value;
    results_.push_back(Tensor::zeros(w.shape(), DType::F32, w.device()));
    if (plan_.mine(i)) matrices_[i].momentum = Tensor::zeros(w.shape(), DType::F32, w.device());
  }
}

void Muon::step(ParameterSet& params, double lr) {
  auto& all = params.all();
  QUOPT_CHECK(all.size() == names_.size(), "muon: step() got ", all.size(), " parameters, constructed with ",
              names_.size());
  for (std::size_t i = 0; i < all.size(); ++i)
    QUOPT_CHECK(all[i].name == names_[i], "muon: parameter ", i, " is ", all[i].name, ", constructed with ",
                names_[i]);
  ++steps_;

  // Owned hidden matrices: momentum, then the orthogonalised update O.
  for (std::size_t i = 0; i < matrices_.size(); ++i) {
    if (!plan_.mine(i)) continue;
    Matrix& mx = matrices_[i];
    const Tensor& g = all[mx.param].grad;
    double t0 = wall_seconds();
    kernels::scale(mx.momentum, opt_.momentum);  // buf = mu buf + g
    kernels::axpy(1.0, g, mx.momentum);
    Tensor u = mx.momentum;
    if (opt_.nesterov) {  // u = g + mu buf
      u = Tensor::empty(g.shape(), g.dtype(), g.device());
      u.copy_from(g);
      kernels::axpy(opt_.momentum, mx.momentum, u);
    }
    double t1 = wall_seconds();
    stats_.precond_seconds += t1 - t0;
    NewtonSchulzOptions ns;
    ns.steps = opt_.ns_steps;
    newton_schulz(u, results_[i], ns);
    kernels::scale(results_[i], mx.shape_scale);
    stats_.root_seconds += wall_seconds() - t1;
  }
  stats_.comm_seconds += plan_.allgather(results_);

  const double t0 = wall_seconds();
  // Every rank: W = (1 - lr wd) W - lr O (KellerJordan/Muon: p.mul_(1 - lr * wd); p.add_(update, -lr)).
  const double wd = decays(cfg_, ParamRole::Hidden) ? cfg_.weight_decay : 0.0;
  for (std::size_t i = 0; i < matrices_.size(); ++i) {
    Tensor& w = all[matrices_[i].param].value;
    if (wd != 0.0) kernels::scale(w, 1.0 - lr * wd);
    kernels::axpy(-lr, results_[i], w);
  }
  // AdamW side, replicated; its lr follows the same schedule (adam_lr * lr / optimizer.lr).
  for (auto& s : side_) {
    Parameter& p = all[s.param];
    kernels::AdamWHyper h;
    h.lr = opt_.adam_lr * lr / cfg_.lr;
    h.beta1 = opt_.adam_beta1;
    h.beta2 = opt_.adam_beta2;
    h.eps = opt_.adam_eps;
    h.weight_decay = decays(cfg_, p.role) ? opt_.adam_weight_decay : 0.0;
    h.step = steps_;
    kernels::adamw_update(p.value, p.grad, s.m, s.v, h);
  }
  stats_.update_seconds += wall_seconds() - t0;
}

std::vector<NamedTensor> Muon::state() {
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < matrices_.size(); ++i)
    if (plan_.mine(i))
      out.push_back({names_[matrices_[i].param] + "/momentum_buffer", matrices_[i].momentum});
  for (auto& s : side_) {
    out.push_back({names_[s.param] + "/exp_avg", s.m});
    out.push_back({names_[s.param] + "/exp_avg_sq", s.v});
  }
  return out;
}

std::unique_ptr<Optimizer> make_muon(const OptimizerConfig& cfg, ParameterSet& params,
                                     const OptimizerContext& ctx) {
  const MuonOptions opt = ctx.config ? muon_options(*ctx.config) : MuonOptions{};
  return std::make_unique<Muon>(cfg, opt, params, ctx.data);
}

}  // namespace quopt
