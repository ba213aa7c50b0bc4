#pragma once
// Shampoo (Gupta et al. 2018; Anil et al. 2020) as facebookresearch/optimizers' DistributedShampoo
// (distributed_shampoo/distributed_shampoo.py, preconditioner/shampoo_preconditioner_list.py) with its
// default RootInvShampooPreconditionerConfig. Every parameter (all roles) is merged and blocked
// (optim/blocking.hpp); per block with gradient G at step t:
//   factors   F_k = beta2 F_k + w G_(k) G_(k)^T    (L = G G^T, R = G^T G; w = 1 if beta2 = 1 else 1 - beta2)
//   roots     every precondition_frequency steps from start_preconditioning_step:
//             X_k = (F_k / bc2 + eps I)^(-1/p), p = 2 * order (4 for matrices, 2 for vectors),
//             bc2 = 1 - beta2^t (bias correction, beta2 < 1 only); a failed root keeps the previous one
//   filtered  Gt = beta1 Gt + (1 - beta1) G,  Gb = Gt / (1 - beta1^t)
//   graft     V = gb2 V + (1 - gb2) G^2,  Pg = Gb / (sqrt(V / (1 - gb2^t)) + geps)      (Adam grafting)
//   direction P = Pg before start_preconditioning_step, else P = X_L Gb X_R * ||Pg|| / (||X_L Gb X_R|| +
//   1e-16) decay     P += weight_decay * W                 (decoupled; roles named by optimizer.decay_roles)
//   momentum  M = mu M + (1 - dampening) P;  P = M, or (1 - dampening) P + mu M (Nesterov)   (mu > 0 only)
//   update    W -= lr P
// Distribution: each block is a ShardPlan work item; its factors, roots, filtered gradient, grafting
// state and momentum live only on its owner, which computes P; one all-gather shares every P, then all
// ranks apply the update. See docs/optimizers/shampoo.md.
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "io/run_config.hpp"
#include "optim/blocking.hpp"
#include "optim/optimizer.hpp"
#include "optim/sharding.hpp"

namespace quopt {

enum class GraftingType { None, SGD, AdaGrad, RMSprop, Adam };
enum class RootMethod { Eigen, Newton };

// The [optimizer.shampoo] keys. Defaults: facebookresearch/optimizers at commit f60660661194 (2026-08-05),
// DistributedShampoo.__init__ and the config dataclasses in shampoo_types.py / matrix_functions_types.py,
// except where a comment names README.md "Example 4" (the recipe for replacing AdamW, which the study does).
struct ShampooOptions {
  double beta1 = 0.9;                          // DistributedShampoo(betas=(0.9, 1.0))
  double beta2 = 1.0;                          // DistributedShampoo(betas=(0.9, 1.0)): sum of outer products
  double epsilon = 1e-12;                      // DistributedShampoo(epsilon=1e-12)
  std::int64_t max_preconditioner_dim = 1024;  // DistributedShampoo(max_preconditioner_dim=1024)
  bool merge_dims = true;                      // DistributedConfig(target_parameter_dimensionality=1)
  std::int64_t precondition_frequency = 1;     // DistributedShampoo(precondition_frequency=1)
  std::int64_t start_preconditioning_step = -1;  // DistributedShampoo(start_preconditioning_step=-1):
                                                 // -1 means precondition_frequency
  bool use_bias_correction = true;               // DistributedShampoo(use_bias_correction=True)
  // DistributedShampoo(grafting_config=None) by default; the study (and DESIGN.md) use Adam grafting as
  // README.md Example 4: AdamPreconditionerConfig(beta2=0.999, epsilon=1e-08).
  GraftingType grafting = GraftingType::Adam;
  double grafting_beta2 = 0.999;   // README.md Example 4 (= AdamPreconditionerConfig's default beta2)
  double grafting_epsilon = 1e-8;  // README.md Example 4 (AdamW's eps)
  double momentum = 0.0;           // DistributedShampoo(iterate_averaging_config=None): no momentum
  double dampening = 0.0;          // ClassicMomentumConfig(dampening=0.0)
  bool nesterov = false;           // ClassicMomentumConfig(use_nesterov=False)
  RootMethod root_method = RootMethod::Eigen;  // DefaultEigenConfig (symmetric eigendecomposition)
  bool retry_fp64 = true;                      // EigenConfig(retry_double_precision=True)
  int newton_max_iterations = 100;             // CoupledNewtonConfig(max_iterations=100)
  double newton_tolerance = 1e-6;              // CoupledNewtonConfig(tolerance=1e-6)
};

// Adds the optimizer.shampoo.* keys (doc strings cite each default) to a schema.
void add_shampoo_keys(Schema& s);
// Reads optimizer.shampoo.* from a resolved config whose schema has the keys of add_shampoo_keys.
ShampooOptions shampoo_options(const Config& cfg);

class Shampoo : public Optimizer {
 public:
  // cfg: weight_decay and decay_roles (decoupled decay folded into the search direction as the
  // reference does); cfg.lr is not used (step() gets the scheduled lr). comm: the data-parallel group
  // the blocks are sharded over. Throws quopt::Error for invalid options or non-f32 parameters.
  Shampoo(const OptimizerConfig& cfg, const ShampooOptions& opt, ParameterSet& params,
          MPI_Comm comm = MPI_COMM_SELF);
  std::string name() const override { return "shampoo"; }
  void step(ParameterSet& params, double lr) override;
  // For each block this rank owns: "<block>/factor_<k>", "<block>/inv_root_<k>" (k = 0 rows, 1 columns),
  // "<block>/filtered_grad" (beta1 > 0), "<block>/grafting" (Adam/RMSprop/AdaGrad grafting),
  // "<block>/momentum" (momentum > 0); <block> is "<param>#i,j" or "<param>#i".
  std::vector<NamedTensor> state() override;
  const ShardPlan& plan() const { return plan_; }
  const ShampooOptions& options() const { return opt_; }

 private:
  struct BlockState {
    std::size_t param = 0;  // index in ParameterSet order
    Block block;
    bool decay = false;
    std::vector<double> roots;               // p per factor
    std::vector<Tensor> factors, inv_roots;  // owner only
    Tensor filtered, grafting, momentum;     // owner only (when enabled)
  };
  // One step of a block, in three parts: the statistics (factor matrices, grafting moment), the root
  // inverses where due (compute_roots, for all of this rank's blocks at once), the direction.
  void update_statistics(BlockState& s, const Tensor& grad);
  void compute_direction(BlockState& s, const Tensor& grad, const Tensor& weight, Tensor& out,
                         std::int64_t t);
  // Root inverses of every factor of the given blocks (step t). On the host with more than one thread
  // the factors are spread over the threads, each computed single-threaded, so the roots are the same
  // bits whatever the thread count.
  void compute_roots(const std::vector<std::size_t>& blocks, std::int64_t t);

  OptimizerConfig cfg_;
  ShampooOptions opt_;
  std::int64_t start_ = 1;          // resolved start_preconditioning_step
  std::vector<std::string> names_;  // parameter names in ParameterSet order (checked every step)
  std::vector<Shape> shapes_;
  std::vector<BlockState> blocks_;  // item i of plan_ is blocks_[i]
  ShardPlan plan_;
  std::vector<Tensor> results_;  // search direction per block, every rank
  Device dev_ = Device::Host;     // where the parameters, the state and the results live
};

std::unique_ptr<Optimizer> make_shampoo(const OptimizerConfig& cfg, ParameterSet& params,
                                        const OptimizerContext& ctx);

}  // namespace quopt
