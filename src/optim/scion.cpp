#include "optim/scion.hpp"

#include <cmath>
#include <optional>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "kernels/ops.hpp"
#include "optim/newton_schulz.hpp"

namespace quopt {

namespace {

constexpr const char* kRef = "LIONS-EPFL/scion @f58a393";
// The reference's LMO epsilon: g / (rms + 1e-8) in ColNorm, RowNorm and BiasRMS (scion.py).
constexpr double kLmoEps = 1e-8;

KeySpec lmo_spec(std::string key, ScionLmo def, std::string doc) {
  return string_key(std::move(key), scion_lmo_name(def), {"sign", "colnorm"}, std::move(doc));
}

ScionLmo parse_lmo(const std::string& s) {
  if (s == "sign") return ScionLmo::Sign;
  if (s == "colnorm") return ScionLmo::ColNorm;
  fail("scion: LMO '", s, "' is not one of sign, colnorm");
}

}  // namespace

const char* scion_lmo_name(ScionLmo l) {
  switch (l) {
    case ScionLmo::Spectral:
      return "spectral";
    case ScionLmo::Sign:
      return "sign";
    case ScionLmo::ColNorm:
      return "colnorm";
    case ScionLmo::BiasRMS:
      return "biasrms";
  }
  return "?";
}

void add_scion_keys(Schema& s) {
  const ScionOptions d;
  s.add(exclusive_min(
      float_key("optimizer.scion.momentum", d.momentum, 0.0, 1.0,
                cat("averaging weight a of d = (1 - a) d + a g (one minus the usual momentum; 1 = no "
                    "averaging); 0.1 as ",
                    kRef, " README and examples/modded-nanogpt/train_gpt_scion.py"))));
  s.add(bool_key("optimizer.scion.unconstrained", d.unconstrained,
                 cat("false: W = (1 - lr) W - lr scale lmo(d) (iterates stay in the norm ball of radius "
                     "scale); true: W -= lr scale lmo(d); false as ",
                     kRef, " scion.py")));
  s.add(int_key(
      "optimizer.scion.ns_steps", d.ns_steps, 1.0, std::nullopt,
      cat("Newton-Schulz iterations of the Spectral LMO; 5 as ", kRef, " scion.py Spectral(steps=5)")));
  s.add(exclusive_min(float_key("optimizer.scion.scale_hidden", d.scale_hidden, 0.0, std::nullopt,
                                cat("radius of the hidden matrices (Spectral LMO); 50 as ", kRef,
                                    " examples/modded-nanogpt/train_gpt_scion.py (scale)"))));
  s.add(lmo_spec("optimizer.scion.output_lmo", d.output_lmo,
                 cat("LMO of the output head (the tied embedding, or head/weight): sign = sign(d) / d_in, "
                     "colnorm = columns to RMS 1 / d_in; sign as ",
                     kRef, " examples/modded-nanogpt/train_gpt_scion.py")));
  s.add(exclusive_min(
      float_key("optimizer.scion.scale_output", d.scale_output, 0.0, std::nullopt,
                cat("radius of the output head; 3000 as ", kRef,
                    " examples/modded-nanogpt/train_gpt_scion.py (last_scale, tied lm_head)"))));
  s.add(lmo_spec("optimizer.scion.input_lmo", d.input_lmo,
                 cat("LMO of an untied input embedding: sign = sign(d), colnorm = each embedding row to RMS "
                     "1; sign as ",
                     kRef, " examples/shallow-nanogpt/model.py (Mixed, wte Sign normalized=False)")));
  s.add(exclusive_min(float_key("optimizer.scion.scale_input", d.scale_input, 0.0, std::nullopt,
                                cat("radius of an untied input embedding; 1 as ", kRef,
                                    " examples/shallow-nanogpt/model.py (Mixed, wte)"))));
  s.add(exclusive_min(
      float_key("optimizer.scion.scale_gain", d.scale_gain, 0.0, std::nullopt,
                cat("radius of the RMSNorm gains (BiasRMS LMO); the hidden radius 50, as ", kRef,
                    " examples/deit/main_scion.py and examples/airbench give BiasRMS groups the hidden "
                    "scale"))));
}

ScionOptions scion_options(const Config& cfg) {
  ScionOptions o;
  o.momentum = cfg.get_float("optimizer.scion.momentum");
  o.unconstrained = cfg.get_bool("optimizer.scion.unconstrained");
  o.ns_steps = static_cast<int>(cfg.get_int("optimizer.scion.ns_steps"));
  o.scale_hidden = cfg.get_float("optimizer.scion.scale_hidden");
  o.output_lmo = parse_lmo(cfg.get_string("optimizer.scion.output_lmo"));
  o.scale_output = cfg.get_float("optimizer.scion.scale_output");
  o.input_lmo = parse_lmo(cfg.get_string("optimizer.scion.input_lmo"));
  o.scale_input = cfg.get_float("optimizer.scion.scale_input");
  o.scale_gain = cfg.get_float("optimizer.scion.scale_gain");
  return o;
}

Scion::Scion(const OptimizerConfig& cfg, const ScionOptions& opt, ParameterSet& params, bool tied_embeddings,
             MPI_Comm comm)
    : cfg_(cfg), opt_(opt) {
  QUOPT_CHECK(opt.momentum > 0.0 && opt.momentum <= 1.0, "scion: optimizer.scion.momentum = ", opt.momentum,
              " must be in (0, 1] (it is one minus the usual momentum)");
  QUOPT_CHECK(opt.ns_steps >= 1, "scion: optimizer.scion.ns_steps = ", opt.ns_steps, " must be >= 1");
  for (ScionLmo l : {opt.output_lmo, opt.input_lmo})
    QUOPT_CHECK(l == ScionLmo::Sign || l == ScionLmo::ColNorm,
                "scion: output_lmo / input_lmo must be sign or colnorm, not ", scion_lmo_name(l));
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (cfg.weight_decay != 0.0 && rank == 0)
    log_warn(
        "optimizer.weight_decay = ", cfg.weight_decay,
        " is ignored by scion: its weight decay is the constrained update W = (1 - lr) W - ... "
        "(optimizer.scion.unconstrained = false; arXiv 2502.07529 Sec. 3); set optimizer.weight_decay = 0");

  std::vector<WorkItem> items;
  for (auto& p : params.all()) {
    names_.push_back(p.name);
    QUOPT_CHECK(p.value.dtype() == DType::F32, "scion: parameter ", p.name, " is ", p.value.describe(),
                "; this Scion runs on f32 parameters");
    Group g;
    switch (p.role) {
      case ParamRole::Hidden:
        QUOPT_CHECK(p.value.ndim() == 2, "scion: hidden parameter ", p.name, " is ", p.value.describe(),
                    "; the Spectral LMO needs a matrix");
        g.lmo = ScionLmo::Spectral;
        g.scale = opt.scale_hidden;
        g.item = static_cast<std::ptrdiff_t>(items.size());
        item_param_.push_back(names_.size() - 1);
        items.push_back(
            {p.name, newton_schulz_flops(p.value.dim(0), p.value.dim(1), opt.ns_steps), p.value.shape()});
        break;
      case ParamRole::Embedding:
      case ParamRole::Head:
        QUOPT_CHECK(p.value.ndim() == 2, "scion: ", role_name(p.role), " parameter ", p.name, " is ",
                    p.value.describe(), "; expected [vocab, d_model]");
        g.output = p.role == ParamRole::Head || tied_embeddings;
        g.lmo = g.output ? opt.output_lmo : opt.input_lmo;
        g.scale = g.output ? opt.scale_output : opt.scale_input;
        break;
      case ParamRole::Gain:
        g.lmo = ScionLmo::BiasRMS;
        g.scale = opt.scale_gain;
        break;
    }
    groups_.push_back(std::move(g));
  }
  plan_ = ShardPlan(comm, std::move(items));
  stats_.balance = plan_.balance();
  const bool averaging = opt.momentum != 1.0;
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    Group& g = groups_[i];
    const Tensor& w = params.all()[i].value;
    const bool held = g.item < 0 || plan_.mine(static_cast<std::size_t>(g.item));
    if (averaging && held) g.momentum = Tensor::zeros(w.shape(), DType::F32, w.device());
    if (g.item < 0) g.dir = Tensor::zeros(w.shape(), DType::F32, w.device());
  }
  for (std::size_t it = 0; it < item_param_.size(); ++it) {
    const Tensor& w = params.all()[item_param_[it]].value;
    results_.push_back(Tensor::zeros(w.shape(), DType::F32, w.device()));
  }
}

void Scion::apply_lmo(const Group& g, const Tensor& d, Tensor& out) const {
  switch (g.lmo) {
    case ScionLmo::Spectral:
      fail("scion: internal: the Spectral LMO runs as a work item");
    case ScionLmo::Sign:
      // scion.py Sign: sign(g) / d_in when normalized (output head), sign(g) for the input embedding.
      // The output head [vocab, d_model] is a Linear with d_in = d_model.
      kernels::sign_scaled(d, g.output ? 1.0 / static_cast<double>(d.dim(1)) : 1.0, out);
      return;
    case ScionLmo::ColNorm:
      if (g.output) {
        // scion.py ColNorm(normalized=True) on the head [d_out = vocab, d_in = d_model]: per column j,
        // rms_j = ||g[:, j]|| / sqrt(d_out), times d_in; g / (rms + eps).
        kernels::rms_normalize(d, 0, static_cast<double>(d.dim(1)), kLmoEps, out);
      } else {
        // scion.py ColNorm(normalized=False, transpose=True) on the input embedding [vocab, d_model]
        // (a Linear with d_in = vocab stored transposed): each row v to RMS 1 over d_model.
        kernels::rms_normalize(d, 1, 1.0, kLmoEps, out);
      }
      return;
    case ScionLmo::BiasRMS:
      // scion.py BiasRMS: g / (sqrt(mean(g^2)) + eps) over the (1-D) gain vector.
      kernels::rms_normalize(d, 1, 1.0, kLmoEps, out);
      return;
  }
}

void Scion::step(ParameterSet& params, double lr) {
  auto& all = params.all();
  QUOPT_CHECK(all.size() == names_.size(), "scion: step() got ", all.size(), " parameters, constructed with ",
              names_.size());
  for (std::size_t i = 0; i < all.size(); ++i)
    QUOPT_CHECK(all[i].name == names_[i], "scion: parameter ", i, " is ", all[i].name, ", constructed with ",
                names_[i]);
  ++steps_;
  const double a = opt_.momentum;

  // d = (1 - a) d + a g (scion.py: buf.mul_(1 - momentum).add_(g, alpha=momentum)) where this rank holds
  // the buffer; then lmo(d): owned hidden matrices -> results_, replicated parameters -> dir.
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    Group& g = groups_[i];
    const bool held = g.item < 0 || plan_.mine(static_cast<std::size_t>(g.item));
    if (!held) continue;
    const double t0 = wall_seconds();
    Tensor d = all[i].grad;
    if (g.momentum.defined()) {
      kernels::scale(g.momentum, 1.0 - a);
      kernels::axpy(a, all[i].grad, g.momentum);
      d = g.momentum;
    }
    const double t1 = wall_seconds();
    stats_.precond_seconds += t1 - t0;
    if (g.item >= 0) {
      // scion.py Spectral(normalized=True): NS5(g) * sqrt(d_out / d_in).
      Tensor& r = results_[static_cast<std::size_t>(g.item)];
      NewtonSchulzOptions ns;
      ns.steps = opt_.ns_steps;
      newton_schulz(d, r, ns);
      kernels::scale(r, std::sqrt(static_cast<double>(r.dim(0)) / static_cast<double>(r.dim(1))));
      stats_.root_seconds += wall_seconds() - t1;
    } else {
      apply_lmo(g, d, g.dir);
      stats_.update_seconds += wall_seconds() - t1;
    }
  }
  stats_.comm_seconds += plan_.allgather(results_);

  // Every rank: W = (1 - lr) W - lr scale lmo(d)  (constrained)  or  W -= lr scale lmo(d).
  const double t0 = wall_seconds();
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    Group& g = groups_[i];
    Tensor& w = all[i].value;
    const Tensor& dir = g.item >= 0 ? results_[static_cast<std::size_t>(g.item)] : g.dir;
    if (!opt_.unconstrained) kernels::scale(w, 1.0 - lr);
    kernels::axpy(-lr * g.scale, dir, w);
  }
  stats_.update_seconds += wall_seconds() - t0;
}

std::vector<NamedTensor> Scion::state() {
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < groups_.size(); ++i)
    if (groups_[i].momentum.defined()) out.push_back({names_[i] + "/momentum_buffer", groups_[i].momentum});
  return out;
}

std::unique_ptr<Optimizer> make_scion(const OptimizerConfig& cfg, ParameterSet& params,
                                      const OptimizerContext& ctx) {
  const ScionOptions opt = ctx.config ? scion_options(*ctx.config) : ScionOptions{};
  // Tied embeddings: model.tie_embeddings when the config has it, else "no head/weight parameter".
  bool tied = true;
  for (const auto& p : params.all())
    if (p.role == ParamRole::Head) tied = false;
  if (ctx.config && ctx.config->schema().find("model.tie_embeddings"))
    tied = ctx.config->get_bool("model.tie_embeddings");
  return std::make_unique<Scion>(cfg, opt, params, tied, ctx.data);
}

}  // namespace quopt
