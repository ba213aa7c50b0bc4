#include "optim/soap.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/ops.hpp"
#include "kernels/optim_ops.hpp"
#include "optim/matrix_functions.hpp"

namespace quopt {

namespace {

constexpr const char* kRef = "nikhilvyas/SOAP soap.py @a1e5535";

// Column permutation: out[:, j] = in[:, idx[j]] of a [rows, cols] f32 matrix, on in's device.
Tensor permute_columns(const Tensor& in, const std::vector<std::int64_t>& idx) {
  Tensor out = Tensor::empty(in.shape(), in.dtype(), in.device());
  kernels::gather_columns(in, idx, out);
  return out;
}

// sum of squares in index order on the host (the bits the host path always had); the fixed-order fp64
// reduction of the kernel API on a device.
double sum_sq(const Tensor& t) {
  if (!t.is_host()) return kernels::sum_squares(t);
  const float* p = t.data<float>();
  double ss = 0.0;
  for (std::int64_t i = 0; i < t.numel(); ++i) ss += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  return ss;
}

}  // namespace

void add_soap_keys(Schema& s) {
  const SoapOptions d;
  s.add(exclusive_max(float_key(
      "optimizer.soap.beta1", d.beta1, 0.0, 1.0,
      cat("Adam first-moment decay (in the eigenbasis); 0.95 as ", kRef, " SOAP(betas=(0.95, 0.95))"))));
  s.add(exclusive_max(float_key(
      "optimizer.soap.beta2", d.beta2, 0.0, 1.0,
      cat("Adam second-moment decay (in the eigenbasis); 0.95 as ", kRef, " SOAP(betas=(0.95, 0.95))"))));
  s.add(exclusive_max(float_key(
      "optimizer.soap.shampoo_beta", d.shampoo_beta, -1.0, 1.0,
      cat("EMA factor of the factor matrices GG; < 0 means beta2; -1 as ", kRef, " SOAP(shampoo_beta=-1)"))));
  s.add(exclusive_min(
      float_key("optimizer.soap.eps", d.eps, 0.0, std::nullopt,
                cat("Adam denominator epsilon sqrt(v) + eps; 1e-8 as ", kRef, " SOAP(eps=1e-8)"))));
  s.add(int_key("optimizer.soap.precondition_frequency", d.precondition_frequency, 1.0, std::nullopt,
                cat("steps between eigenbasis refreshes (power iteration + QR); 10 as ", kRef,
                    " SOAP(precondition_frequency=10)")));
  s.add(int_key("optimizer.soap.max_precond_dim", d.max_precond_dim, 1.0, std::nullopt,
                cat("dimensions larger than this get no factor (identity basis); 10000 as ", kRef,
                    " SOAP(max_precond_dim=10000), which excludes common vocabulary sizes")));
  s.add(bool_key("optimizer.soap.merge_dims", d.merge_dims,
                 cat("merge dimensions while their product is <= max_precond_dim; false as ", kRef,
                     " SOAP(merge_dims=False)")));
  s.add(bool_key("optimizer.soap.precondition_1d", d.precondition_1d,
                 cat("give 1-D parameters (norm gains) a full factor; false as ", kRef,
                     " SOAP(precondition_1d=False)")));
  s.add(bool_key("optimizer.soap.normalize_grads", d.normalize_grads,
                 cat("divide each update by its RMS; false as ", kRef, " SOAP(normalize_grads=False)")));
  s.add(bool_key("optimizer.soap.correct_bias", d.correct_bias,
                 cat("Adam bias correction lr sqrt(1 - b2^s) / (1 - b1^s); true as ", kRef,
                     " SOAP(correct_bias=True)")));
  s.add(bool_key("optimizer.soap.retry_fp64", d.retry_fp64,
                 cat("retry a failed f32 eigendecomposition in fp64 (then use the identity basis); true as ",
                     kRef, " get_orthogonal_matrix")));
}

SoapOptions soap_options(const Config& cfg) {
  SoapOptions o;
  o.beta1 = cfg.get_float("optimizer.soap.beta1");
  o.beta2 = cfg.get_float("optimizer.soap.beta2");
  o.shampoo_beta = cfg.get_float("optimizer.soap.shampoo_beta");
  o.eps = cfg.get_float("optimizer.soap.eps");
  o.precondition_frequency = cfg.get_int("optimizer.soap.precondition_frequency");
  o.max_precond_dim = cfg.get_int("optimizer.soap.max_precond_dim");
  o.merge_dims = cfg.get_bool("optimizer.soap.merge_dims");
  o.precondition_1d = cfg.get_bool("optimizer.soap.precondition_1d");
  o.normalize_grads = cfg.get_bool("optimizer.soap.normalize_grads");
  o.correct_bias = cfg.get_bool("optimizer.soap.correct_bias");
  o.retry_fp64 = cfg.get_bool("optimizer.soap.retry_fp64");
  return o;
}

Shape soap_merge_dims(const Shape& shape, std::int64_t max_precond_dim) {
  Shape out;
  std::int64_t cur = 1;
  for (std::int64_t d : shape) {
    const std::int64_t prod = cur * d;
    if (prod > max_precond_dim) {
      if (cur > 1) {
        out.push_back(cur);
        cur = d;
      } else {
        out.push_back(d);
        cur = 1;
      }
    } else {
      cur = prod;
    }
  }
  if (cur > 1 || out.empty()) out.push_back(cur);
  return out;
}

Soap::Soap(const OptimizerConfig& cfg, const SoapOptions& opt, ParameterSet& params, MPI_Comm comm)
    : cfg_(cfg), opt_(opt) {
  QUOPT_CHECK(opt.beta1 >= 0.0 && opt.beta1 < 1.0, "optimizer.soap.beta1 = ", opt.beta1,
              " must be in [0, 1)");
  QUOPT_CHECK(opt.beta2 >= 0.0 && opt.beta2 < 1.0, "optimizer.soap.beta2 = ", opt.beta2,
              " must be in [0, 1)");
  QUOPT_CHECK(opt.shampoo_beta < 1.0, "optimizer.soap.shampoo_beta = ", opt.shampoo_beta,
              " must be < 1 (negative: use beta2)");
  QUOPT_CHECK(opt.eps > 0.0, "optimizer.soap.eps = ", opt.eps, " must be > 0");
  QUOPT_CHECK(opt.precondition_frequency >= 1,
              "optimizer.soap.precondition_frequency = ", opt.precondition_frequency, " must be >= 1");
  QUOPT_CHECK(opt.max_precond_dim >= 1, "optimizer.soap.max_precond_dim = ", opt.max_precond_dim,
              " must be >= 1");

  std::vector<WorkItem> work;
  std::size_t idx = 0;
  for (auto& p : params.all()) {
    QUOPT_CHECK(p.value.dtype() == DType::F32 && p.grad.defined() && p.grad.dtype() == DType::F32 &&
                    p.grad.shape() == p.value.shape() && p.grad.device() == p.value.device(),
                "soap: parameter ", p.name, " is ", p.value.describe(),
                "; SOAP needs f32 parameters with f32 gradients of the same shape and device");
    Item it;
    it.param = idx++;
    it.decay = decays(cfg, p.role);
    const Shape& shape = p.value.shape();
    if (shape.size() == 1) {
      it.view = shape;
      it.precond = {opt.precondition_1d && shape[0] <= opt.max_precond_dim};
    } else {
      it.view = opt.merge_dims ? soap_merge_dims(shape, opt.max_precond_dim) : shape;
      for (std::int64_t d : it.view) it.precond.push_back(d <= opt.max_precond_dim);
    }
    QUOPT_CHECK(it.view.size() == 1 || it.view.size() == 2, "soap: parameter ", p.name, " has shape ",
                shape_str(shape), " (", shape_str(it.view),
                " after merging); only 1-D and 2-D parameters are supported");
    const auto numel = static_cast<double>(p.value.numel());
    double cost = numel;
    for (std::size_t k = 0; k < it.view.size(); ++k)
      if (it.precond[k]) {
        const auto d = static_cast<double>(it.view[k]);
        cost += d * d * d + 6.0 * d * numel;  // eigh/QR + factor update and the two projections
      }
    work.push_back(WorkItem{p.name, cost, it.view});
    names_.push_back(p.name);
    shapes_.push_back(shape);
    items_.push_back(std::move(it));
  }
  plan_ = ShardPlan(comm, std::move(work));
  stats_.balance = plan_.balance();
  // State and results live where the parameters do (a GPU with train.device = "cuda").
  dev_ = params.all().empty() ? Device::Host : params.all().front().value.device();
  for (std::size_t i = 0; i < items_.size(); ++i) {
    Item& it = items_[i];
    results_.push_back(Tensor::zeros(it.view, DType::F32, dev_));
    it.gg.resize(it.view.size());
    it.q.resize(it.view.size());
    if (!plan_.mine(i)) continue;
    it.exp_avg = Tensor::zeros(it.view, DType::F32, dev_);
    it.exp_avg_sq = Tensor::zeros(it.view, DType::F32, dev_);
    for (std::size_t k = 0; k < it.view.size(); ++k)
      if (it.precond[k]) {
        it.gg[k] = Tensor::zeros({it.view[k], it.view[k]}, DType::F32, dev_);
        it.q[k] = Tensor::zeros({it.view[k], it.view[k]}, DType::F32, dev_);
      }
  }
}

// GG_d = sb GG_d + (1 - sb) G_(d) G_(d)^T for every preconditioned dimension (torch lerp_ with weight 1 -
// sb).
void Soap::update_factors(Item& it, const Tensor& grad, double sb) {
  const double w = 1.0 - sb;
  if (it.view.size() == 1) {
    if (!it.precond[0]) return;
    const Tensor col = grad.reshape({grad.numel(), 1});
    kernels::matmul(col, false, col, true, it.gg[0], w, sb);
    return;
  }
  if (it.precond[0]) kernels::matmul(grad, false, grad, true, it.gg[0], w, sb);
  if (it.precond[1]) kernels::matmul(grad, true, grad, false, it.gg[1], w, sb);
}

// Forward: Q_L^T X Q_R (project); back: Q_L X Q_R^T (project_back). Identity on unpreconditioned dims.
Tensor Soap::project(const Item& it, const Tensor& x, bool back) const {
  Tensor cur = x;
  if (it.view.size() == 1) {
    if (!it.precond[0]) return cur.clone();
    const std::int64_t n = x.numel();
    Tensor out = Tensor::empty(it.view, DType::F32, dev_);
    Tensor o2 = out.reshape({n, 1});
    kernels::matmul(it.q[0], !back, x.reshape({n, 1}), false, o2);
    return out;
  }
  bool copied = false;
  if (it.precond[0]) {
    Tensor out = Tensor::empty(it.view, DType::F32, dev_);
    kernels::matmul(it.q[0], !back, cur, false, out);
    cur = out;
    copied = true;
  }
  if (it.precond[1]) {
    Tensor out = Tensor::empty(it.view, DType::F32, dev_);
    kernels::matmul(cur, false, it.q[1], back, out);
    cur = out;
    copied = true;
  }
  return copied ? cur : cur.clone();
}

// First call: GG from the first gradient, Q = its eigenvectors in descending eigenvalue order
// (get_orthogonal_matrix: eigh(GG + 1e-30 I), fp64 retry, flipped columns).
void Soap::init_item(Item& it, const Tensor& grad) {
  const double sb = opt_.shampoo_beta >= 0.0 ? opt_.shampoo_beta : opt_.beta2;
  double t0 = wall_seconds();
  update_factors(it, grad, sb);
  stats_.precond_seconds += wall_seconds() - t0;
  t0 = wall_seconds();
  for (std::size_t k = 0; k < it.view.size(); ++k) {
    if (!it.precond[k]) continue;
    const std::int64_t d = it.view[k];
    Tensor a = it.gg[k].clone();
    kernels::add_diagonal(a, 1e-30);
    const EighResult e = eigh(a, opt_.retry_fp64);
    if (!e.ok) {
      ++stats_.failed_roots;  // the reference would raise; quopt falls back to the identity basis and reports
                              // it
      it.q[k].copy_from(identity_matrix(d, DType::F32, dev_));
      continue;
    }
    std::vector<std::int64_t> rev(static_cast<std::size_t>(d));
    for (std::int64_t j = 0; j < d; ++j) rev[static_cast<std::size_t>(j)] = d - 1 - j;
    it.q[k].copy_from(permute_columns(e.eigenvectors, rev));
  }
  stats_.root_seconds += wall_seconds() - t0;
}

// get_orthogonal_matrix_QR: per preconditioned dimension, sort the basis (and v) by the estimated
// eigenvalues diag(Q^T GG Q), descending; then one power iteration Q = qr(GG Q).Q.
void Soap::refresh_basis(Item& it) {
  for (std::size_t k = 0; k < it.view.size(); ++k) {
    if (!it.precond[k]) continue;
    const std::int64_t d = it.view[k];
    Tensor ggq = Tensor::empty({d, d}, DType::F32, dev_);
    kernels::matmul(it.gg[k], false, it.q[k], false, ggq);
    const std::vector<double> est = kernels::column_dots(it.q[k], ggq);  // diag(Q^T GG Q), on the host
    std::vector<std::int64_t> idx(static_cast<std::size_t>(d));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](std::int64_t x, std::int64_t y) {
      return est[static_cast<std::size_t>(x)] > est[static_cast<std::size_t>(y)];
    });
    // v = v.index_select(k, idx)
    Tensor v = it.exp_avg_sq;
    if (it.view.size() == 1) {
      Tensor row = v.reshape({1, d});
      it.exp_avg_sq.copy_from(permute_columns(row, idx));
    } else if (k == 0) {
      Tensor c = Tensor::empty(v.shape(), DType::F32, dev_);
      kernels::gather_rows(v, idx, c);
      it.exp_avg_sq.copy_from(c);
    } else {
      it.exp_avg_sq.copy_from(permute_columns(v, idx));
    }
    const Tensor q_sorted = permute_columns(it.q[k], idx);
    const Tensor power = permute_columns(ggq, idx);  // GG Q_sorted
    const QrResult r = qr(power);
    if (r.ok)
      it.q[k].copy_from(r.q);
    else {
      ++stats_.failed_roots;  // keep the (sorted) previous basis
      it.q[k].copy_from(q_sorted);
    }
  }
}

void Soap::compute_update(Item& it, const Tensor& grad, Tensor& out, std::int64_t s) {
  const std::int64_t n = grad.numel();
  double t0 = wall_seconds();
  const Tensor gp = project(it, grad, false);
  // Adam in the eigenbasis: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; x = m / (sqrt(v) + eps).
  kernels::ema(it.exp_avg, gp, opt_.beta1, 1.0 - opt_.beta1, false);
  kernels::ema(it.exp_avg_sq, gp, opt_.beta2, 1.0 - opt_.beta2, true);
  Tensor x = Tensor::empty(it.view, DType::F32, dev_);
  kernels::adam_direction(it.exp_avg, it.exp_avg_sq, 1.0, opt_.eps, x);
  Tensor ng = project(it, x, true);
  if (opt_.normalize_grads) {
    const double rms = std::sqrt(sum_sq(ng) / static_cast<double>(std::max<std::int64_t>(n, 1)));
    kernels::scale(ng, 1.0 / (1e-30 + rms));
  }
  out.copy_from(ng);
  stats_.update_seconds += wall_seconds() - t0;

  // Preconditioner update after the step (so the current gradient never enters its own projection).
  const double sb = opt_.shampoo_beta >= 0.0 ? opt_.shampoo_beta : opt_.beta2;
  t0 = wall_seconds();
  update_factors(it, grad, sb);
  stats_.precond_seconds += wall_seconds() - t0;
  if (s % opt_.precondition_frequency == 0) {
    t0 = wall_seconds();
    // m back to the parameter space with the old basis, into the new basis afterwards. (The reference
    // does this round trip every step; with an unchanged basis it is the identity up to rounding, so
    // quopt does it only when the basis changes.)
    const Tensor m_orig = project(it, it.exp_avg, true);
    refresh_basis(it);
    it.exp_avg.copy_from(project(it, m_orig, false));
    stats_.root_seconds += wall_seconds() - t0;
  }
}

void Soap::step(ParameterSet& params, double lr) {
  const double t_start = wall_seconds();
  const double before =
      stats_.precond_seconds + stats_.root_seconds + stats_.comm_seconds + stats_.update_seconds;
  const std::vector<Parameter*> ps = checked_params("soap", params, names_, shapes_);
  ++steps_;
  const std::int64_t t = steps_;
  for (std::size_t i = 0; i < items_.size(); ++i) {
    if (!plan_.mine(i)) continue;
    Item& it = items_[i];
    const Tensor g = ps[it.param]->grad.reshape(it.view);
    if (t == 1)
      init_item(it, g);  // the first call only initialises (no update), as the reference
    else
      compute_update(it, g, results_[i], t - 1);
  }
  if (t > 1) {
    stats_.comm_seconds += plan_.allgather(results_);
    const double s = static_cast<double>(t - 1);
    double step_size = lr;
    if (opt_.correct_bias)
      step_size = lr * std::sqrt(1.0 - std::pow(opt_.beta2, s)) / (1.0 - std::pow(opt_.beta1, s));
    for (std::size_t i = 0; i < items_.size(); ++i) {
      Tensor& p = ps[items_[i].param]->value;
      kernels::axpy(-step_size, results_[i], p);  // p += -step_size u
      if (items_[i].decay && cfg_.weight_decay > 0.0)
        kernels::axpy(-lr * cfg_.weight_decay, p, p);  // p += -lr wd p
    }
  }
  const double total = wall_seconds() - t_start;
  stats_.update_seconds += std::max(0.0, total - (stats_.precond_seconds + stats_.root_seconds +
                                                  stats_.comm_seconds + stats_.update_seconds - before));
}

std::vector<NamedTensor> Soap::state() {
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < items_.size(); ++i) {
    if (!plan_.mine(i)) continue;
    Item& it = items_[i];
    out.push_back({names_[i] + "/exp_avg", it.exp_avg});
    out.push_back({names_[i] + "/exp_avg_sq", it.exp_avg_sq});
    for (std::size_t k = 0; k < it.view.size(); ++k)
      if (it.precond[k]) {
        out.push_back({cat(names_[i], "/GG_", k), it.gg[k]});
        out.push_back({cat(names_[i], "/Q_", k), it.q[k]});
      }
  }
  return out;
}

std::unique_ptr<Optimizer> make_soap(const OptimizerConfig& cfg, ParameterSet& params,
                                     const OptimizerContext& ctx) {
  const SoapOptions opt = ctx.config ? soap_options(*ctx.config) : SoapOptions{};
  return std::make_unique<Soap>(cfg, opt, params, ctx.data);
}

}  // namespace quopt
