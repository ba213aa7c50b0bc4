#include "optim/psgd_kron.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <optional>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/timer.hpp"
#include "kernels/ops.hpp"
#include "kernels/optim_ops.hpp"
#include "kernels/psgd_ops.hpp"

namespace quopt {

// ---- configuration ----------------------------------------------------------------------------------

namespace {

constexpr const char* kMemorySaveNames[] = {"none", "smart_one_diag", "one_diag", "all_diag"};
constexpr const char* kTriggerNames[] = {"random", "counter"};

KeySpec key(std::string name, KeyType type, ConfigValue def, std::string doc, std::optional<double> min = {},
            std::optional<double> max = {}, std::vector<std::string> choices = {}) {
  KeySpec k;
  k.key = "optimizer.psgd." + std::move(name);
  k.type = type;
  k.default_value = std::move(def);
  k.doc = std::move(doc);
  k.min = min;
  k.max = max;
  k.choices = std::move(choices);
  return k;
}

}  // namespace

void add_psgd_keys(Schema& s) {
  const PsgdOptions d;  // the defaults, with their sources, are in psgd_kron.hpp (PsgdOptions)
  KeySpec b1 =
      key("b1", KeyType::Float, d.b1, "momentum (EMA) coefficient; 0.9 as kron_torch Kron(b1=0.9)", 0.0, 1.0);
  b1.max_exclusive = true;
  s.add(b1);
  s.add(key("max_size_triangular", KeyType::Int, d.max_size_triangular,
            "a dimension larger than this gets a diagonal factor; 8192 as kron_torch max_size_triangular",
            1.0));
  s.add(key("min_ndim_triangular", KeyType::Int, d.min_ndim_triangular,
            "tensors with fewer dimensions get only diagonal factors (1-D gains); 2 as kron_torch "
            "min_ndim_triangular",
            1.0));
  s.add(
      key("memory_save_mode", KeyType::String, std::string(kMemorySaveNames[0]),
          "none: all factors triangular (within max_size_triangular); smart_one_diag: the largest dimension "
          "diagonal if strictly larger than the others; one_diag: the largest diagonal; all_diag; none as "
          "kron_torch memory_save_mode=None",
          {}, {}, {kMemorySaveNames[0], kMemorySaveNames[1], kMemorySaveNames[2], kMemorySaveNames[3]}));
  s.add(key(
      "momentum_into_precond_update", KeyType::Bool, d.momentum_into_precond_update,
      "fit the preconditioner to the bias-corrected momentum (true) or the raw gradient; true as kron_torch "
      "momentum_into_precond_update"));
  KeySpec plr = key("precond_lr", KeyType::Float, d.precond_lr,
                    "step size of the factor updates (normalised by a spectral-norm lower bound); 0.1 as "
                    "kron_torch precond_lr",
                    0.0, 1.0);
  plr.min_exclusive = true;
  s.add(plr);
  KeySpec init = key("precond_init_scale", KeyType::Float, d.precond_init_scale,
                     "initial preconditioner scale: each of the k factors starts at scale^(1/k) I; 1.0 as "
                     "kron_torch precond_init_scale",
                     0.0);
  init.min_exclusive = true;
  s.add(init);
  KeySpec pmax = key("update_prob_max", KeyType::Float, d.update_prob_max,
                     "preconditioner update probability during the flat start; 1.0 as kron_torch "
                     "precond_update_prob_schedule(max_prob=1.0)",
                     0.0, 1.0);
  pmax.min_exclusive = true;
  s.add(pmax);
  KeySpec pmin = key("update_prob_min", KeyType::Float, d.update_prob_min,
                     "floor of the annealed update probability; 0.03 as kron_torch "
                     "precond_update_prob_schedule(min_prob=0.03)",
                     0.0, 1.0);
  pmin.min_exclusive = true;
  s.add(pmin);
  s.add(key(
      "update_prob_decay", KeyType::Float, d.update_prob_decay,
      "exponential decay rate per step after the flat start, p = max * exp(-decay * (step - flat_start)); "
      "0.001 as kron_torch precond_update_prob_schedule(decay=0.001)",
      0.0));
  s.add(key("update_prob_flat_start", KeyType::Int, d.update_prob_flat_start,
            "steps at the maximum update probability before the decay starts; 500 as kron_torch "
            "precond_update_prob_schedule(flat_start=500)",
            0.0));
  s.add(key("update_trigger", KeyType::String, std::string(kTriggerNames[0]),
            "random: update with probability p (a coin per step, as psgd_torch KronWhiten.step "
            "torch.rand([]) < p); counter: kron_torch's deterministic form, update when the steps since the "
            "last update reach 1/p",
            {}, {}, {kTriggerNames[0], kTriggerNames[1]}));
  s.add(key("balance_prob", KeyType::Float, d.balance_prob,
            "probability, on a step that updates the preconditioner, of rebalancing the factor scales of 2-D "
            "parameters; 0.01 as kron_torch (rng.random() < 0.01, 'roughly every 100 updates')",
            0.0, 1.0));
  s.add(key(
      "clip_rms", KeyType::Float, d.clip_rms,
      "the preconditioned update is scaled down to this RMS if larger; 1.1 as kron_torch _clip_update_rms; "
      "0 disables",
      0.0));
}

PsgdOptions psgd_options(const Config& cfg) {
  PsgdOptions o;
  o.b1 = cfg.get_float("optimizer.psgd.b1");
  o.max_size_triangular = cfg.get_int("optimizer.psgd.max_size_triangular");
  o.min_ndim_triangular = cfg.get_int("optimizer.psgd.min_ndim_triangular");
  const std::string& mode = cfg.get_string("optimizer.psgd.memory_save_mode");
  bool found = false;
  for (int i = 0; i < 4; ++i)
    if (mode == kMemorySaveNames[i]) {
      o.memory_save_mode = static_cast<PsgdMemorySave>(i);
      found = true;
    }
  if (!found)
    fail("optimizer.psgd.memory_save_mode = \"", mode, "\" (", cfg.source("optimizer.psgd.memory_save_mode"),
         ") is not one of none, smart_one_diag, one_diag, all_diag");
  o.momentum_into_precond_update = cfg.get_bool("optimizer.psgd.momentum_into_precond_update");
  o.precond_lr = cfg.get_float("optimizer.psgd.precond_lr");
  o.precond_init_scale = cfg.get_float("optimizer.psgd.precond_init_scale");
  o.update_prob_max = cfg.get_float("optimizer.psgd.update_prob_max");
  o.update_prob_min = cfg.get_float("optimizer.psgd.update_prob_min");
  o.update_prob_decay = cfg.get_float("optimizer.psgd.update_prob_decay");
  o.update_prob_flat_start = cfg.get_int("optimizer.psgd.update_prob_flat_start");
  const std::string& trig = cfg.get_string("optimizer.psgd.update_trigger");
  if (trig == kTriggerNames[0]) {
    o.update_trigger = PsgdTrigger::Random;
  } else if (trig == kTriggerNames[1]) {
    o.update_trigger = PsgdTrigger::Counter;
  } else {
    fail("optimizer.psgd.update_trigger = \"", trig, "\" (", cfg.source("optimizer.psgd.update_trigger"),
         ") is not one of random, counter");
  }
  o.balance_prob = cfg.get_float("optimizer.psgd.balance_prob");
  o.clip_rms = cfg.get_float("optimizer.psgd.clip_rms");
  if (o.update_prob_min > o.update_prob_max)
    fail("optimizer.psgd.update_prob_min = ", o.update_prob_min, " (",
         cfg.source("optimizer.psgd.update_prob_min"),
         ") is larger than optimizer.psgd.update_prob_max = ", o.update_prob_max, " (",
         cfg.source("optimizer.psgd.update_prob_max"), "); set update_prob_min <= update_prob_max");
  return o;
}

double psgd_update_probability(const PsgdOptions& o, std::int64_t n) {
  const double p =
      o.update_prob_max * std::exp(-o.update_prob_decay *
                                   (static_cast<double>(n) - static_cast<double>(o.update_prob_flat_start)));
  return std::clamp(p, o.update_prob_min, o.update_prob_max);
}

std::vector<PsgdFactorKind> psgd_factor_kinds(const Shape& shape, const PsgdOptions& o) {
  const std::size_t nd = shape.size();
  std::vector<bool> diag(nd, false);
  if (nd > 0) {
    // The largest dimension; on ties the last one (numpy argsort(shape)[::-1][0] in kron_torch).
    std::size_t largest = 0;
    for (std::size_t i = 1; i < nd; ++i)
      if (shape[i] >= shape[largest]) largest = i;
    switch (o.memory_save_mode) {
      case PsgdMemorySave::None:
        break;
      case PsgdMemorySave::SmartOneDiag: {
        // Only if the largest dimension stands out (strictly larger than the second largest).
        Shape sorted = shape;
        std::sort(sorted.begin(), sorted.end());
        if (nd > 1 && sorted[nd - 1] > sorted[nd - 2]) diag[largest] = true;
        break;
      }
      case PsgdMemorySave::OneDiag:
        diag[largest] = true;
        break;
      case PsgdMemorySave::AllDiag:
        std::fill(diag.begin(), diag.end(), true);
        break;
    }
  }
  std::vector<PsgdFactorKind> kinds;
  for (std::size_t i = 0; i < nd; ++i) {
    const bool d = shape[i] == 1 || shape[i] > o.max_size_triangular ||
                   static_cast<std::int64_t>(nd) < o.min_ndim_triangular || diag[i];
    kinds.push_back(d ? PsgdFactorKind::Diagonal : PsgdFactorKind::Triangular);
  }
  return kinds;
}

// ---- numerical kernels ------------------------------------------------------------------------------
// Every piece runs through the kernel API (kernels/psgd_ops.hpp and the element ops), so the same code
// steps parameters on the host and on a GPU.

namespace psgd_detail {

namespace {

// x <- op(F) x (side 0) or x op(F) (side 1), op = transpose if `trans`; with `solve`, op(F)^-1 instead.
void apply_factor(const Factor& f, int side, bool trans, bool solve, Tensor& x) {
  if (f.kind == PsgdFactorKind::Diagonal) kernels::diagonal_apply(f.q, side, solve, x);
  if (f.kind == PsgdFactorKind::Triangular) kernels::triangular_apply(f.q, side, trans, solve, x);
}

}  // namespace

int update_factors(Factor& left, Factor& right, const Tensor& g, const Tensor& v, double precond_lr) {
  QUOPT_CHECK(g.ndim() == 2 && v.shape() == g.shape(),
              "psgd: update_factors takes two matrices of one shape, got ", g.describe(), " and ",
              v.describe());
  const std::int64_t rows = g.dim(0), cols = g.dim(1), n = g.numel();
  QUOPT_CHECK(left.kind == PsgdFactorKind::None ? rows == 1 : left.q.dim(0) == rows, "psgd: left factor ",
              left.q.describe(), " for ", rows, " rows");
  QUOPT_CHECK(right.kind != PsgdFactorKind::None && right.q.dim(0) == cols, "psgd: right factor ",
              right.q.describe(), " for ", cols, " columns");
  // Damping (kron_torch _calc_A_and_conjB): G + sqrt(eps_f32) * mean|G| * V.
  const double mean_abs = kernels::abs_sum(g);
  const float damp = std::sqrt(FLT_EPSILON) * static_cast<float>(mean_abs / static_cast<double>(n));
  Tensor a = g.clone(), b = v.clone();
  kernels::axpy(damp, v, a);
  // A = Q1 Gn Q2^T; B = Q1^-T V Q2^-1.
  apply_factor(left, 0, false, false, a);
  apply_factor(right, 1, true, false, a);
  apply_factor(left, 0, true, true, b);
  apply_factor(right, 1, false, true, b);

  int failed = 0;
  for (int side = 0; side < 2; ++side) {
    Factor& f = side == 0 ? left : right;
    if (f.kind == PsgdFactorKind::None) continue;
    Tensor t1 = Tensor::empty(f.q.shape(), f.q.dtype(), f.q.device());
    Tensor t2 = Tensor::empty(f.q.shape(), f.q.dtype(), f.q.device());
    bool ok = false;
    if (f.kind == PsgdFactorKind::Diagonal) {
      kernels::sum_squares_axis(a, side, t1);
      kernels::sum_squares_axis(b, side, t2);
      ok = kernels::psgd_diagonal_update(f.q, t1, t2, precond_lr);
    } else {
      // side 0: A A^T (A is [rows, cols]); side 1: A^T A.
      kernels::gram(a, side == 1, t1);
      kernels::gram(b, side == 1, t2);
      ok = kernels::psgd_triangular_update(f.q, t1, t2, precond_lr);
    }
    if (!ok) ++failed;
  }
  return failed;
}

void precondition(const Factor& left, const Factor& right, Tensor& x) {
  apply_factor(left, 0, false, false, x);   // Q1 x
  apply_factor(left, 0, true, false, x);    // Q1^T Q1 x
  apply_factor(right, 1, true, false, x);   // ... Q2^T
  apply_factor(right, 1, false, false, x);  // ... Q2^T Q2
}

void balance(Factor& left, Factor& right) {
  if (left.kind == PsgdFactorKind::None || right.kind == PsgdFactorKind::None) return;
  const double norms[2] = {kernels::max_abs(left.q), kernels::max_abs(right.q)};
  // Deviation guard: kron_torch would produce NaN for an all-zero factor; such a factor is left alone.
  if (!(norms[0] > 0.0 && norms[1] > 0.0 && std::isfinite(norms[0]) && std::isfinite(norms[1]))) return;
  const double gmean = std::exp(0.5 * (std::log(norms[0]) + std::log(norms[1])));
  kernels::scale(left.q, gmean / norms[0]);
  kernels::scale(right.q, gmean / norms[1]);
}

}  // namespace psgd_detail

// ---- the optimizer ----------------------------------------------------------------------------------

namespace {

// Stream names of the counter-based random draws (quopt::Rng(seed, hash_name(...)), counter from the step).
constexpr const char* kCoinStream = "psgd/update_coin";
constexpr const char* kBalanceStream = "psgd/balance_coin";
std::string noise_stream(const std::string& param) {
  return "psgd/noise/" + param;
}

double work_cost(const Shape& shape, const std::vector<PsgdFactorKind>& kinds) {
  double numel = 1.0;
  for (auto d : shape) numel *= static_cast<double>(d);
  // Elementwise work (momentum, damping, clip, diagonal factors) is linear; a triangular factor of size k
  // costs k^3 (its update: triu(E) Q, the Gram matrices' share) plus the mode products with the
  // [.., k, ..] tensor (A, B, the preconditioning: about 4 numel * k).
  double cost = numel;
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    const double k = static_cast<double>(shape[i]);
    cost += kinds[i] == PsgdFactorKind::Triangular ? k * k * k + 4.0 * numel * k : numel;
  }
  return cost;
}

}  // namespace

PsgdKron::PsgdKron(const OptimizerConfig& cfg, const PsgdOptions& opt, ParameterSet& params,
                   const OptimizerContext& ctx)
    : cfg_(cfg), opt_(opt), seed_(ctx.seed) {
  std::vector<WorkItem> items;
  for (const auto& p : params.all()) {
    QUOPT_CHECK(p.value.ndim() == 1 || p.value.ndim() == 2, "psgd: parameter ", p.name, " has shape ",
                shape_str(p.value.shape()), "; only 1-D and 2-D parameters are supported");
    QUOPT_CHECK(p.value.dtype() == DType::F32, "psgd: parameter ", p.name, " is ",
                dtype_name(p.value.dtype()), "; PSGD-Kron keeps f32 state and needs f32 parameters");
    Slot s;
    s.name = p.name;
    s.role = p.role;
    s.shape = p.value.shape();
    s.rows = p.value.ndim() == 2 ? p.value.dim(0) : 1;
    s.cols = p.value.dim(-1);
    s.kinds = psgd_factor_kinds(s.shape, opt_);
    items.push_back({s.name, work_cost(s.shape, s.kinds), s.shape});
    slots_.push_back(std::move(s));
  }
  plan_ = ShardPlan(ctx.data, std::move(items));
  stats_.balance = plan_.balance();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    const Device dev = params.all()[i].value.device();  // state lives where the parameter lives
    results_.push_back(Tensor::zeros(s.shape, DType::F32, dev));
    if (!plan_.mine(i)) continue;
    s.momentum = Tensor::zeros(s.shape, DType::F32, dev);
    // Each factor starts at scale^(1/ndim) I (kron_torch _init_Q_exprs).
    const float scale =
        static_cast<float>(std::pow(opt_.precond_init_scale, 1.0 / static_cast<double>(s.shape.size())));
    for (std::size_t d = 0; d < s.shape.size(); ++d) {
      const std::int64_t k = s.shape[d];
      if (s.kinds[d] == PsgdFactorKind::Diagonal) {
        Tensor q = Tensor::empty({k}, DType::F32);
        std::fill(q.data<float>(), q.data<float>() + k, scale);
        s.q.push_back(q.to(dev));
      } else {
        Tensor q = Tensor::zeros({k, k}, DType::F32);
        for (std::int64_t j = 0; j < k; ++j) q.data<float>()[j * k + j] = scale;
        s.q.push_back(q.to(dev));
      }
    }
  }
}

bool PsgdKron::decide_update(std::int64_t n, double prob) {
  if (opt_.update_trigger == PsgdTrigger::Random) {
    Rng coin(seed_, hash_name(kCoinStream));
    coin.set_counter(static_cast<std::uint64_t>(n));
    return coin.uniform() < prob;
  }
  // kron_torch: counter += 1; update when counter >= 1 / p, then reset. The counter is a function of the
  // step alone, so after a resume (set_steps_taken) it is replayed from step 0 instead of checkpointed.
  if (counter_step_ != n) {
    counter_ = 0;
    for (std::int64_t k = 0; k < n; ++k) {
      ++counter_;
      if (static_cast<double>(counter_) >= 1.0 / psgd_update_probability(opt_, k)) counter_ = 0;
    }
  }
  ++counter_;
  counter_step_ = n + 1;
  const bool up = static_cast<double>(counter_) >= 1.0 / prob;
  if (up) counter_ = 0;
  return up;
}

void PsgdKron::compute_direction(std::size_t i, const Tensor& grad, bool do_update, bool do_balance,
                                 std::int64_t n) {
  Slot& s = slots_[i];
  const double t0 = wall_seconds();
  // Momentum EMA and bias correction (kron_torch: mu = b1 mu + (1 - b1) g; mu / (1 - b1^t)), in f32.
  const float b1 = static_cast<float>(opt_.b1);
  const float bias = static_cast<float>(1.0 - std::pow(opt_.b1, static_cast<double>(n + 1)));
  kernels::ema(s.momentum, grad, b1, 1.0f - b1, false);
  kernels::divide(s.momentum, bias, results_[i]);
  // The matrix view [rows, cols]; factors in matrix-view order: a 1-D parameter has no left factor.
  Tensor dir = results_[i].reshape({s.rows, s.cols});
  psgd_detail::Factor left, right;
  if (s.shape.size() == 2) {
    left = {s.kinds[0], s.q[0]};
    right = {s.kinds[1], s.q[1]};
  } else {
    right = {s.kinds[0], s.q[0]};
  }
  if (s.shape.size() == 2 && do_balance) psgd_detail::balance(left, right);
  if (do_update) {
    // The probe is drawn on the host from the counter-based stream (the same numbers on any device) and
    // copied to the parameter's device.
    Tensor v = Tensor::empty({s.rows, s.cols}, DType::F32);
    Rng rng(seed_, hash_name(noise_stream(s.name)));
    // Two counters per normal draw: the step's block of counters never overlaps another step's.
    const std::int64_t cnt = s.rows * s.cols;
    rng.set_counter(static_cast<std::uint64_t>(n) * 2u * static_cast<std::uint64_t>(cnt));
    float* vp = v.data<float>();
    for (std::int64_t k = 0; k < cnt; ++k) vp[k] = static_cast<float>(rng.normal());
    if (!grad.is_host()) v = v.to(grad.device());
    stats_.failed_roots += psgd_detail::update_factors(
        left, right, opt_.momentum_into_precond_update ? dir : grad.reshape({s.rows, s.cols}), v,
        opt_.precond_lr);
  }
  stats_.precond_seconds += wall_seconds() - t0;  // no root phase: triangular solves count as precond
  psgd_detail::precondition(left, right, dir);
  kernels::clip_rms(results_[i], opt_.clip_rms);
}

void PsgdKron::step(ParameterSet& params, double lr) {
  const double t0 = wall_seconds();
  const double precond_before = stats_.precond_seconds;
  QUOPT_CHECK(params.all().size() == slots_.size(), "psgd: step() got ", params.all().size(),
              " parameters, the optimizer was built for ", slots_.size());
  const std::int64_t n = steps_;  // steps taken before this one (kron_torch _prob_step)
  ++steps_;
  const double prob = psgd_update_probability(opt_, n);
  last_update_ = decide_update(n, prob);
  last_balance_ = false;
  if (last_update_ && opt_.balance_prob > 0.0) {
    Rng coin(seed_, hash_name(kBalanceStream));
    coin.set_counter(static_cast<std::uint64_t>(n));
    last_balance_ = coin.uniform() < opt_.balance_prob;
  }
  std::size_t i = 0;
  for (auto& p : params.all()) {
    QUOPT_CHECK(p.name == slots_[i].name && p.value.shape() == slots_[i].shape, "psgd: parameter ", i, " is ",
                p.name, " ", shape_str(p.value.shape()), ", the optimizer was built for ", slots_[i].name,
                " ", shape_str(slots_[i].shape));
    if (plan_.mine(i)) compute_direction(i, p.grad, last_update_, last_balance_, n);
    ++i;
  }
  const double dt_comm = plan_.allgather(results_);
  stats_.comm_seconds += dt_comm;
  // Every rank: p -= lr * (d + wd * p) (kron_torch: pre_grad.add_(p, alpha=wd); p.add_(pre_grad, alpha=-lr)).
  const float lrf = static_cast<float>(lr);
  i = 0;
  for (auto& p : params.all()) {
    const float wd = decays(cfg_, p.role) ? static_cast<float>(cfg_.weight_decay) : 0.0f;
    kernels::decayed_update(p.value, results_[i], lrf, wd);
    ++i;
  }
  // update_seconds: everything in step() except preconditioner fitting and communication.
  const double total = wall_seconds() - t0;
  stats_.update_seconds += total - dt_comm - (stats_.precond_seconds - precond_before);
}

std::vector<NamedTensor> PsgdKron::state() {
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!plan_.mine(i)) continue;
    out.push_back({slots_[i].name + "/momentum", slots_[i].momentum});
    for (std::size_t d = 0; d < slots_[i].q.size(); ++d)
      out.push_back({cat(slots_[i].name, "/Q.", d), slots_[i].q[d]});
  }
  return out;
}

std::unique_ptr<Optimizer> make_psgd(const OptimizerConfig& cfg, ParameterSet& params,
                                     const OptimizerContext& ctx) {
  const PsgdOptions opt = ctx.config ? psgd_options(*ctx.config) : PsgdOptions{};
  return std::make_unique<PsgdKron>(cfg, opt, params, ctx);
}

}  // namespace quopt
