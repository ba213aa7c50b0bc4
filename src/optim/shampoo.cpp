#include "optim/shampoo.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <optional>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/host/host_policy.hpp"
#include "kernels/host/threads.hpp"
#include "kernels/ops.hpp"
#include "kernels/optim_ops.hpp"
#include "optim/matrix_functions.hpp"

namespace quopt {

namespace {

constexpr const char* kRef = "facebookresearch/optimizers @f606606";
constexpr const char* kReadme =
    "facebookresearch/optimizers @f606606 distributed_shampoo/README.md Example 4";

const char* grafting_name(GraftingType g) {
  switch (g) {
    case GraftingType::None:
      return "none";
    case GraftingType::SGD:
      return "sgd";
    case GraftingType::AdaGrad:
      return "adagrad";
    case GraftingType::RMSprop:
      return "rmsprop";
    case GraftingType::Adam:
      return "adam";
  }
  return "?";
}

GraftingType parse_grafting(const std::string& s) {
  for (GraftingType g : {GraftingType::None, GraftingType::SGD, GraftingType::AdaGrad, GraftingType::RMSprop,
                         GraftingType::Adam})
    if (s == grafting_name(g)) return g;
  fail("optimizer.shampoo.grafting = \"", s,
       "\" is not a grafting type; use none, sgd, adagrad, rmsprop or adam");
}

// ---- small f32 helpers (fixed order: results are bitwise reproducible)
// ------------------------------------------
double norm2(const Tensor& t) {
  if (!t.is_host()) return std::sqrt(kernels::sum_squares(t));  // device: the fixed-order fp64 reduction
  const float* p = t.data<float>();
  double s = 0.0;
  for (std::int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  return std::sqrt(s);
}

}  // namespace

void add_shampoo_keys(Schema& s) {
  const ShampooOptions d;
  s.add(exclusive_max(
      float_key("optimizer.shampoo.beta1", d.beta1, 0.0, 1.0,
                cat("EMA factor of the gradient (filtered gradient, used by Shampoo and the grafting); 0 "
                    "disables it; 0.9 as ",
                    kRef, " DistributedShampoo(betas=(0.9, 1.0))"))));
  s.add(float_key(
      "optimizer.shampoo.beta2", d.beta2, 0.0, 1.0,
      cat("EMA factor of the factor matrices L, R; 1 = sum of outer products (AdaGrad-like); 1.0 as ", kRef,
          " DistributedShampoo(betas=(0.9, 1.0))")));
  s.add(exclusive_min(float_key(
      "optimizer.shampoo.epsilon", d.epsilon, 0.0, std::nullopt,
      cat("damping eps of (F + eps I)^(-1/p); 1e-12 as ", kRef, " DistributedShampoo(epsilon=1e-12)"))));
  s.add(
      int_key("optimizer.shampoo.max_preconditioner_dim", d.max_preconditioner_dim, 1.0, std::nullopt,
              cat("parameters are split into blocks of at most this size per dimension (after merging); 1024 "
                  "as ",
                  kRef, " DistributedShampoo(max_preconditioner_dim=1024)")));
  s.add(bool_key("optimizer.shampoo.merge_dims", d.merge_dims,
                 cat("merge adjacent dimensions while their product is <= max_preconditioner_dim (a small "
                     "matrix becomes one vector with a full-matrix preconditioner); true as ",
                     kRef, " (merge_small_dims with DistributedConfig(target_parameter_dimensionality=1))")));
  s.add(int_key("optimizer.shampoo.precondition_frequency", d.precondition_frequency, 1.0, std::nullopt,
                cat("steps between root-inverse computations; 1 as ", kRef,
                    " DistributedShampoo(precondition_frequency=1); its README examples use 100")));
  s.add(int_key("optimizer.shampoo.start_preconditioning_step", d.start_preconditioning_step, -1.0,
                std::nullopt,
                cat("first step that uses Shampoo (before it: the grafting direction); must be >= "
                    "precondition_frequency; -1 = precondition_frequency, as ",
                    kRef, " DistributedShampoo(start_preconditioning_step=-1)")));
  s.add(bool_key(
      "optimizer.shampoo.use_bias_correction", d.use_bias_correction,
      cat("bias-correct the filtered gradient (1 - beta1^t) and the factors (1 - beta2^t, beta2 < 1); "
          "true as ",
          kRef, " DistributedShampoo(use_bias_correction=True)")));
  s.add(string_key(
      "optimizer.shampoo.grafting", grafting_name(d.grafting), {"none", "sgd", "adagrad", "rmsprop", "adam"},
      cat("layer-wise grafting: the Shampoo direction of each block takes the norm of this method's "
          "direction; adam as ",
          kReadme, " (the reference class default is none)")));
  s.add(exclusive_min(float_key("optimizer.shampoo.grafting_beta2", d.grafting_beta2, 0.0, 1.0,
                                cat("second-moment EMA factor of Adam/RMSprop grafting; 0.999 as ", kReadme,
                                    " (AdamPreconditionerConfig(beta2=0.999))"))));
  s.add(exclusive_min(float_key("optimizer.shampoo.grafting_epsilon", d.grafting_epsilon, 0.0, std::nullopt,
                                cat("epsilon of the grafting denominator sqrt(V) + eps; 1e-8 as ", kReadme,
                                    " (AdamPreconditionerConfig(epsilon=1e-08))"))));
  s.add(exclusive_max(
      float_key("optimizer.shampoo.momentum", d.momentum, 0.0, 1.0,
                cat("classic momentum on the search direction; 0 = off, as ", kRef,
                    " DistributedShampoo(iterate_averaging_config=None) (ClassicMomentumConfig uses 0.5 when "
                    "enabled)"))));
  s.add(exclusive_max(
      float_key("optimizer.shampoo.dampening", d.dampening, 0.0, 1.0,
                cat("momentum dampening; 0 as ", kRef, " ClassicMomentumConfig(dampening=0.0)"))));
  s.add(bool_key("optimizer.shampoo.nesterov", d.nesterov,
                 cat("Nesterov momentum; false as ", kRef, " ClassicMomentumConfig(use_nesterov=False)")));
  s.add(string_key("optimizer.shampoo.root_method", "eigen", {"eigen", "newton"},
                   cat("inverse root by symmetric eigendecomposition or coupled Newton iteration; eigen as ",
                       kRef, " DefaultEigenConfig")));
  s.add(bool_key("optimizer.shampoo.retry_fp64", d.retry_fp64,
                 cat("retry a failed f32 eigendecomposition in fp64 (then keep the previous root); true as ",
                     kRef, " EigenConfig(retry_double_precision=True)")));
  s.add(int_key("optimizer.shampoo.newton_max_iterations", d.newton_max_iterations, 1.0, std::nullopt,
                cat("root_method = newton: maximum iterations; 100 as ", kRef,
                    " CoupledNewtonConfig(max_iterations=100)")));
  s.add(exclusive_min(float_key("optimizer.shampoo.newton_tolerance", d.newton_tolerance, 0.0, std::nullopt,
                                cat("root_method = newton: stop when max|M - I| <= tolerance; 1e-6 as ", kRef,
                                    " CoupledNewtonConfig(tolerance=1e-6)"))));
}

ShampooOptions shampoo_options(const Config& cfg) {
  ShampooOptions o;
  o.beta1 = cfg.get_float("optimizer.shampoo.beta1");
  o.beta2 = cfg.get_float("optimizer.shampoo.beta2");
  o.epsilon = cfg.get_float("optimizer.shampoo.epsilon");
  o.max_preconditioner_dim = cfg.get_int("optimizer.shampoo.max_preconditioner_dim");
  o.merge_dims = cfg.get_bool("optimizer.shampoo.merge_dims");
  o.precondition_frequency = cfg.get_int("optimizer.shampoo.precondition_frequency");
  o.start_preconditioning_step = cfg.get_int("optimizer.shampoo.start_preconditioning_step");
  o.use_bias_correction = cfg.get_bool("optimizer.shampoo.use_bias_correction");
  o.grafting = parse_grafting(cfg.get_string("optimizer.shampoo.grafting"));
  o.grafting_beta2 = cfg.get_float("optimizer.shampoo.grafting_beta2");
  o.grafting_epsilon = cfg.get_float("optimizer.shampoo.grafting_epsilon");
  o.momentum = cfg.get_float("optimizer.shampoo.momentum");
  o.dampening = cfg.get_float("optimizer.shampoo.dampening");
  o.nesterov = cfg.get_bool("optimizer.shampoo.nesterov");
  const std::string& rm = cfg.get_string("optimizer.shampoo.root_method");
  QUOPT_CHECK(rm == "eigen" || rm == "newton", "optimizer.shampoo.root_method = \"", rm,
              "\" is not a root method; use eigen or newton");
  o.root_method = rm == "newton" ? RootMethod::Newton : RootMethod::Eigen;
  o.retry_fp64 = cfg.get_bool("optimizer.shampoo.retry_fp64");
  o.newton_max_iterations = static_cast<int>(cfg.get_int("optimizer.shampoo.newton_max_iterations"));
  o.newton_tolerance = cfg.get_float("optimizer.shampoo.newton_tolerance");
  return o;
}

Shampoo::Shampoo(const OptimizerConfig& cfg, const ShampooOptions& opt, ParameterSet& params, MPI_Comm comm)
    : cfg_(cfg), opt_(opt) {
  QUOPT_CHECK(opt.beta1 >= 0.0 && opt.beta1 < 1.0, "optimizer.shampoo.beta1 = ", opt.beta1,
              " must be in [0, 1)");
  QUOPT_CHECK(opt.beta2 >= 0.0 && opt.beta2 <= 1.0, "optimizer.shampoo.beta2 = ", opt.beta2,
              " must be in [0, 1]");
  QUOPT_CHECK(opt.epsilon > 0.0, "optimizer.shampoo.epsilon = ", opt.epsilon, " must be > 0");
  QUOPT_CHECK(opt.max_preconditioner_dim >= 1,
              "optimizer.shampoo.max_preconditioner_dim = ", opt.max_preconditioner_dim, " must be >= 1");
  QUOPT_CHECK(opt.precondition_frequency >= 1,
              "optimizer.shampoo.precondition_frequency = ", opt.precondition_frequency, " must be >= 1");
  QUOPT_CHECK(opt.start_preconditioning_step >= -1,
              "optimizer.shampoo.start_preconditioning_step = ", opt.start_preconditioning_step,
              " must be >= -1");
  start_ = opt.start_preconditioning_step == -1 ? opt.precondition_frequency : opt.start_preconditioning_step;
  QUOPT_CHECK(start_ >= opt.precondition_frequency,
              "optimizer.shampoo.start_preconditioning_step = ", opt.start_preconditioning_step,
              " must be >= optimizer.shampoo.precondition_frequency = ", opt.precondition_frequency,
              " (or -1 for the same value), as facebookresearch/optimizers requires");
  QUOPT_CHECK(opt.grafting_beta2 > 0.0 && opt.grafting_beta2 <= 1.0,
              "optimizer.shampoo.grafting_beta2 = ", opt.grafting_beta2, " must be in (0, 1]");
  QUOPT_CHECK(opt.grafting_epsilon > 0.0, "optimizer.shampoo.grafting_epsilon = ", opt.grafting_epsilon,
              " must be > 0");
  QUOPT_CHECK(opt.momentum >= 0.0 && opt.momentum < 1.0, "optimizer.shampoo.momentum = ", opt.momentum,
              " must be in [0, 1)");
  QUOPT_CHECK(opt.dampening >= 0.0 && opt.dampening < 1.0, "optimizer.shampoo.dampening = ", opt.dampening,
              " must be in [0, 1)");
  QUOPT_CHECK(opt.newton_max_iterations >= 1,
              "optimizer.shampoo.newton_max_iterations = ", opt.newton_max_iterations, " must be >= 1");
  QUOPT_CHECK(opt.newton_tolerance > 0.0, "optimizer.shampoo.newton_tolerance = ", opt.newton_tolerance,
              " must be > 0");

  std::vector<WorkItem> items;
  std::size_t idx = 0;
  for (auto& p : params.all()) {
    QUOPT_CHECK(p.value.dtype() == DType::F32 && p.grad.defined() && p.grad.dtype() == DType::F32 &&
                    p.grad.shape() == p.value.shape() && p.grad.device() == p.value.device(),
                "shampoo: parameter ", p.name, " is ", p.value.describe(),
                "; Shampoo needs f32 parameters with f32 gradients of the same shape and device");
    names_.push_back(p.name);
    shapes_.push_back(p.value.shape());
    for (Block& b : make_blocks(p.name, p.value.shape(), opt.max_preconditioner_dim, opt.merge_dims)) {
      BlockState s;
      s.param = idx;
      s.decay = decays(cfg, p.role);
      // Exponent rule of the reference (ClassicShampooPreconditionerList._get_inverse_exponent):
      // inverse exponent 1 / (2 max(order, 1)) on every dimension, i.e. p = 2 * order.
      const std::vector<std::int64_t> dims =
          b.order == 1 ? std::vector<std::int64_t>{b.cols} : std::vector<std::int64_t>{b.rows, b.cols};
      double cost = static_cast<double>(b.numel());
      for (std::int64_t d : dims) {
        s.roots.push_back(2.0 * b.order);
        cost +=
            static_cast<double>(d) * static_cast<double>(d) * static_cast<double>(d);  // eigendecomposition
        cost +=
            2.0 * static_cast<double>(d) * static_cast<double>(b.numel());  // factor update + preconditioning
      }
      items.push_back(WorkItem{b.name, cost, b.shape()});
      s.block = std::move(b);
      blocks_.push_back(std::move(s));
    }
    ++idx;
  }
  plan_ = ShardPlan(comm, std::move(items));
  stats_.balance = plan_.balance();
  // State and results live where the parameters do (a GPU with train.device = "cuda").
  dev_ = params.all().empty() ? Device::Host : params.all().front().value.device();
  const auto zeros = [&](const Shape& shape) { return Tensor::zeros(shape, DType::F32, dev_); };
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    results_.push_back(zeros(blocks_[i].block.shape()));
    if (!plan_.mine(i)) continue;
    BlockState& s = blocks_[i];
    const std::vector<std::int64_t> dims = s.block.order == 1
                                               ? std::vector<std::int64_t>{s.block.cols}
                                               : std::vector<std::int64_t>{s.block.rows, s.block.cols};
    for (std::int64_t d : dims) {
      s.factors.push_back(zeros({d, d}));
      s.inv_roots.push_back(identity_matrix(d, DType::F32, dev_));  // the reference initialises them to I
    }
    if (opt_.beta1 != 0.0) s.filtered = zeros(s.block.shape());
    if (opt_.grafting == GraftingType::Adam || opt_.grafting == GraftingType::RMSprop ||
        opt_.grafting == GraftingType::AdaGrad)
      s.grafting = zeros(s.block.shape());
    if (opt_.momentum != 0.0) s.momentum = zeros(s.block.shape());
  }
}

void Shampoo::update_statistics(BlockState& s, const Tensor& grad) {
  const std::int64_t n = grad.numel();
  const double t0 = wall_seconds();
  const double w = opt_.beta2 == 1.0 ? 1.0 : 1.0 - opt_.beta2;  // weighting_factor of the reference
  if (s.block.order == 2) {
    kernels::matmul(grad, false, grad, true, s.factors[0], w, opt_.beta2);  // L = beta2 L + w G G^T
    kernels::matmul(grad, true, grad, false, s.factors[1], w, opt_.beta2);  // R = beta2 R + w G^T G
  } else {
    const Tensor col = grad.reshape({n, 1});
    kernels::matmul(col, false, col, true, s.factors[0], w, opt_.beta2);  // F = beta2 F + w g g^T
  }
  if (s.grafting.defined()) {
    if (opt_.grafting == GraftingType::AdaGrad)
      kernels::ema(s.grafting, grad, 1.0, 1.0, true);  // v += g^2
    else
      kernels::ema(s.grafting, grad, opt_.grafting_beta2, 1.0 - opt_.grafting_beta2, true);
  }
  stats_.precond_seconds += wall_seconds() - t0;
}

void Shampoo::compute_roots(const std::vector<std::size_t>& blocks, std::int64_t t) {
  // Root inverses (amortized): as _group_step_body's perform_amortized_computation.
  const std::int64_t f = opt_.precondition_frequency;
  if (!((t % f == 0 && t > start_) || t == start_)) return;
  const double t0 = wall_seconds();
  const double bc2 =
      opt_.use_bias_correction && opt_.beta2 < 1.0 ? 1.0 - std::pow(opt_.beta2, static_cast<double>(t)) : 1.0;
  struct Job {
    BlockState* s;
    std::size_t k;
    std::int64_t n;
  };
  std::vector<Job> jobs;
  for (std::size_t i : blocks)
    for (std::size_t k = 0; k < blocks_[i].factors.size(); ++k)
      jobs.push_back({&blocks_[i], k, blocks_[i].factors[k].dim(0)});
  const auto one = [&](const Job& j) {
    Tensor a = j.s->factors[j.k].clone();
    if (bc2 != 1.0) kernels::scale(a, 1.0 / bc2);
    const RootResult r = opt_.root_method == RootMethod::Eigen
                             ? inverse_root_eigen(a, j.s->roots[j.k], opt_.epsilon, opt_.retry_fp64)
                             : inverse_root_newton(a, static_cast<int>(j.s->roots[j.k]), opt_.epsilon,
                                                   opt_.newton_max_iterations, opt_.newton_tolerance);
    if (r.ok) j.s->inv_roots[j.k].copy_from(r.root);
    return r.ok;  // false: keep the previous root, as the reference (it logs a warning and continues)
  };
  // Spread over threads when the O(n^3) work is worth a fork/join: at least that of one 128 x 128
  // eigendecomposition (about a millisecond) in all (quopt choice).
  double work = 0.0;
  for (const Job& j : jobs) work += static_cast<double>(j.n) * static_cast<double>(j.n) * static_cast<double>(j.n);
  const int threads = kernels::host::host_threads();
  const bool host = dev_ == Device::Host;
  if (!host || threads <= 1 || jobs.size() <= 1 || work < 128.0 * 128.0 * 128.0) {
    for (const Job& j : jobs)
      if (!one(j)) ++stats_.failed_roots;
    stats_.root_seconds += wall_seconds() - t0;
    return;
  }
  // Largest factors first, dealt round-robin so that each thread's contiguous share of the static
  // schedule gets a similar amount of O(n^3) work.
  std::stable_sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.n > b.n; });
  std::vector<Job> dealt;
  dealt.reserve(jobs.size());
  const std::size_t T = static_cast<std::size_t>(threads);
  for (std::size_t r = 0; r < T; ++r)
    for (std::size_t i = r; i < jobs.size(); i += T) dealt.push_back(jobs[i]);
  std::vector<char> ok(dealt.size(), 1);
  std::vector<std::exception_ptr> errors(dealt.size());
  {
    const kernels::host::SingleThreadedBlas one_blas_thread_per_root(true);
    kernels::host::host_for(
        "quopt::shampoo::roots", static_cast<std::int64_t>(dealt.size()),
        [&](std::int64_t i) {
          const auto u = static_cast<std::size_t>(i);
          try {
            ok[u] = one(dealt[u]) ? 1 : 0;
          } catch (...) {
            errors[u] = std::current_exception();
          }
        },
        kernels::host::kParallelWork);
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (char o : ok)
    if (!o) ++stats_.failed_roots;
  stats_.root_seconds += wall_seconds() - t0;
}

void Shampoo::compute_direction(BlockState& s, const Tensor& grad, const Tensor& weight, Tensor& out,
                                std::int64_t t) {
  const std::int64_t n = grad.numel();
  const double td = static_cast<double>(t);

  // 3. Filtered gradient Gb (EMA with bias correction).
  Tensor gbar = grad;
  if (s.filtered.defined()) {
    kernels::ema(s.filtered, grad, opt_.beta1, 1.0 - opt_.beta1, false);
    gbar = s.filtered.clone();
    if (opt_.use_bias_correction) kernels::scale(gbar, 1.0 / (1.0 - std::pow(opt_.beta1, td)));
  }

  // 4. Grafting direction Pg.
  Tensor pg;
  if (opt_.grafting == GraftingType::SGD) {
    pg = gbar.clone();
  } else if (opt_.grafting != GraftingType::None) {
    pg = Tensor::empty(grad.shape(), DType::F32, dev_);
    const double bcg = opt_.grafting == GraftingType::Adam && opt_.grafting_beta2 < 1.0
                           ? 1.0 - std::pow(opt_.grafting_beta2, td)
                           : 1.0;
    // Pg = Gb / (sqrt(v / bc) + eps)
    kernels::adam_direction(gbar, s.grafting, 1.0 / bcg, opt_.grafting_epsilon, pg);
  }

  // 5. Search direction: grafting before start_preconditioning_step, else grafted Shampoo.
  if (t < start_ && opt_.grafting != GraftingType::None) {
    out.copy_from(pg);
  } else {
    if (s.block.order == 2) {
      Tensor tmp = Tensor::empty(grad.shape(), DType::F32, dev_);
      kernels::matmul(s.inv_roots[0], false, gbar, false, tmp);  // X_L Gb
      kernels::matmul(tmp, false, s.inv_roots[1], false, out);   // X_L Gb X_R
    } else {
      Tensor o2 = out.reshape({n, 1});
      kernels::matmul(s.inv_roots[0], false, gbar.reshape({n, 1}), false, o2);
    }
    if (opt_.grafting != GraftingType::None) {
      const double scale = norm2(pg) / (norm2(out) + 1e-16);
      kernels::scale(out, scale);
    }
  }

  // 6. Decoupled weight decay folded into the direction (P += wd W), as the reference.
  if (s.decay && cfg_.weight_decay != 0.0) kernels::axpy(cfg_.weight_decay, weight, out);

  // 7. Classic momentum: m = mu m + (1 - dampening) P; P = (1 - dampening) P + mu m (Nesterov) or m.
  if (s.momentum.defined()) {
    const double w1 = 1.0 - opt_.dampening;
    kernels::ema(s.momentum, out, opt_.momentum, w1, false);
    if (opt_.nesterov)
      kernels::ema(out, s.momentum, w1, opt_.momentum, false);
    else
      out.copy_from(s.momentum);
  }
}

void Shampoo::step(ParameterSet& params, double lr) {
  const double t_start = wall_seconds();
  const double before = stats_.precond_seconds + stats_.root_seconds + stats_.comm_seconds;
  const std::vector<Parameter*> ps = checked_params("shampoo", params, names_, shapes_);
  ++steps_;
  std::vector<std::size_t> mine;
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    if (!plan_.mine(i)) continue;
    mine.push_back(i);
    Tensor g = Tensor::empty(blocks_[i].block.shape(), DType::F32, dev_);
    copy_block_out(ps[blocks_[i].param]->grad, blocks_[i].block, g);
    update_statistics(blocks_[i], g);
  }
  compute_roots(mine, steps_);
  for (std::size_t i : mine) {
    BlockState& s = blocks_[i];
    const Parameter& p = *ps[s.param];
    Tensor g = Tensor::empty(s.block.shape(), DType::F32, dev_);
    copy_block_out(p.grad, s.block, g);
    Tensor wt;
    if (s.decay && cfg_.weight_decay != 0.0) {
      wt = Tensor::empty(s.block.shape(), DType::F32, dev_);
      copy_block_out(p.value, s.block, wt);
    }
    compute_direction(s, g, wt, results_[i], steps_);
  }
  stats_.comm_seconds += plan_.allgather(results_);
  for (std::size_t i = 0; i < blocks_.size(); ++i)
    add_block_in(ps[blocks_[i].param]->value, blocks_[i].block, results_[i], -lr);
  // Update time: everything in step() that is not statistics, roots or communication.
  const double total = wall_seconds() - t_start;
  stats_.update_seconds +=
      std::max(0.0, total - (stats_.precond_seconds + stats_.root_seconds + stats_.comm_seconds - before));
}

std::vector<NamedTensor> Shampoo::state() {
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    if (!plan_.mine(i)) continue;
    BlockState& s = blocks_[i];
    for (std::size_t k = 0; k < s.factors.size(); ++k) {
      out.push_back({cat(s.block.name, "/factor_", k), s.factors[k]});
      out.push_back({cat(s.block.name, "/inv_root_", k), s.inv_roots[k]});
    }
    if (s.filtered.defined()) out.push_back({s.block.name + "/filtered_grad", s.filtered});
    if (s.grafting.defined()) out.push_back({s.block.name + "/grafting", s.grafting});
    if (s.momentum.defined()) out.push_back({s.block.name + "/momentum", s.momentum});
  }
  return out;
}

std::unique_ptr<Optimizer> make_shampoo(const OptimizerConfig& cfg, ParameterSet& params,
                                        const OptimizerContext& ctx) {
  const ShampooOptions opt = ctx.config ? shampoo_options(*ctx.config) : ShampooOptions{};
  return std::make_unique<Shampoo>(cfg, opt, params, ctx.data);
}

}  // namespace quopt
