#pragma once
// SOAP (Vyas et al. 2024, arXiv 2409.11321) as nikhilvyas/SOAP soap.py: Adam run in the eigenbasis of
// Shampoo's factor matrices. Every parameter (all roles) is one item; its view is the parameter (1-D
// parameters, or 2-D ones merged by merge_dims), and each view dimension d <= max_precond_dim (1-D views of
// 1-D parameters only with precondition_1d) has a factor GG_d and a basis Q_d; other dimensions use the
// identity. With Gp = Q_L^T G Q_R (projection), per call t (s = t - 1 is SOAP's own step count):
//   t = 1:  GG_d = (1 - sb) G_(d) G_(d)^T;  Q_d = eigenvectors of GG_d, eigenvalues descending;  no update
//   t > 1:  m = b1 m + (1 - b1) Gp;  v = b2 v + (1 - b2) Gp^2        (m, v live in the eigenbasis)
//           N = Q_L (m / (sqrt(v) + eps)) Q_R^T   (divided by its RMS when normalize_grads)
//           W -= lr sqrt(1 - b2^s) / (1 - b1^s) N;   W -= lr wd W    (decay after the step, as the reference)
//           GG_d = sb GG_d + (1 - sb) G_(d) G_(d)^T
//           every precondition_frequency s: sort Q_d's columns (and v) by descending Q^T GG Q diagonal,
//           Q_d = qr(GG_d Q_d).Q (one power iteration), and m is re-expressed in the new basis.
// sb = shampoo_beta, or b2 when shampoo_beta < 0. Distribution: each parameter is a ShardPlan work item;
// m, v, GG and Q live only on its owner, which computes N; one all-gather shares every N, then all ranks
// apply the update. See docs/optimizers/soap.md.
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "io/run_config.hpp"
#include "optim/optimizer.hpp"
#include "optim/sharding.hpp"

namespace quopt {

// The [optimizer.soap] keys. Defaults: nikhilvyas/SOAP soap.py at commit a1e5535 (2024-12-02), SOAP.__init__.
struct SoapOptions {
  double beta1 = 0.95;                       // SOAP(betas=(0.95, 0.95))
  double beta2 = 0.95;                       // SOAP(betas=(0.95, 0.95))
  double shampoo_beta = -1.0;                // SOAP(shampoo_beta=-1): < 0 means beta2
  double eps = 1e-8;                         // SOAP(eps=1e-8)
  std::int64_t precondition_frequency = 10;  // SOAP(precondition_frequency=10)
  std::int64_t max_precond_dim = 10000;      // SOAP(max_precond_dim=10000)
  bool merge_dims = false;                   // SOAP(merge_dims=False)
  bool precondition_1d = false;              // SOAP(precondition_1d=False)
  bool normalize_grads = false;              // SOAP(normalize_grads=False)
  bool correct_bias = true;                  // SOAP(correct_bias=True)
  bool retry_fp64 = true;  // get_orthogonal_matrix retries a failed torch.linalg.eigh in float64
};

// Adds the optimizer.soap.* keys (doc strings cite each default) to a schema.
void add_soap_keys(Schema& s);
// Reads optimizer.soap.* from a resolved config whose schema has the keys of add_soap_keys.
SoapOptions soap_options(const Config& cfg);

// nikhilvyas/SOAP's merge_dims: scanning the dimensions in order, multiply them together while the
// product stays <= max_precond_dim. {32, 32}, 10000 -> {1024};  {64, 256}, 10000 -> {64, 256}.
Shape soap_merge_dims(const Shape& shape, std::int64_t max_precond_dim);

class Soap : public Optimizer {
 public:
  // cfg: weight_decay and decay_roles (decay p -= lr wd p after the step, for the roles named);
  // cfg.lr is not used (step() gets the scheduled lr). comm: the data-parallel group the parameters are
  // sharded over. Throws quopt::Error for invalid options or non-f32 parameters.
  Soap(const OptimizerConfig& cfg, const SoapOptions& opt, ParameterSet& params,
       MPI_Comm comm = MPI_COMM_SELF);
  std::string name() const override { return "soap"; }
  void step(ParameterSet& params, double lr) override;
  // For each parameter this rank owns: "<param>/exp_avg", "<param>/exp_avg_sq" (in the eigenbasis, shape
  // of the view), and "<param>/GG_<d>", "<param>/Q_<d>" for each preconditioned view dimension d.
  std::vector<NamedTensor> state() override;
  const ShardPlan& plan() const { return plan_; }
  const SoapOptions& options() const { return opt_; }

 private:
  struct Item {
    std::size_t param = 0;
    bool decay = false;
    Shape view;                  // 1 or 2 dimensions, same numel as the parameter
    std::vector<bool> precond;   // per view dimension
    Tensor exp_avg, exp_avg_sq;  // owner only
    std::vector<Tensor> gg, q;   // per view dimension; undefined where not preconditioned
  };
  void init_item(Item& it, const Tensor& grad);
  void compute_update(Item& it, const Tensor& grad, Tensor& out, std::int64_t s);
  void update_factors(Item& it, const Tensor& grad, double sb);
  Tensor project(const Item& it, const Tensor& x, bool back) const;
  void refresh_basis(Item& it);

  OptimizerConfig cfg_;
  SoapOptions opt_;
  std::vector<std::string> names_;
  std::vector<Shape> shapes_;
  std::vector<Item> items_;  // item i of plan_ is items_[i]
  ShardPlan plan_;
  std::vector<Tensor> results_;
  Device dev_ = Device::Host;  // where the parameters, the state and the results live
};

std::unique_ptr<Optimizer> make_soap(const OptimizerConfig& cfg, ParameterSet& params,
                                     const OptimizerContext& ctx);

}  // namespace quopt
