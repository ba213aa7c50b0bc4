#pragma once
// PSGD-Kron (Xi-Lin Li, arXiv 1512.04202 / 2402.11858; implementation after evanatyourservice/kron_torch
// kron.py @ 884427c and lixilinx/psgd_torch psgd.py @ a8616f1): a Kronecker-factored preconditioner
// P = (Q1^T Q1) (x) (Q2^T Q2) fitted by a whitening criterion with random probes v ~ N(0, I), applied to
// the bias-corrected momentum, update RMS clipped to 1.1. One upper-triangular (or diagonal) factor per
// dimension of a parameter. Each parameter's factors and momentum are a sharded work item: only the owner
// keeps them, computes the preconditioned, clipped update direction and all-gathers it; every rank
// applies the update. Random draws come from counter-based streams keyed by (seed, name, step), so they
// do not depend on the rank layout or on a resume. docs/optimizers/psgd.md describes the algorithm.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "io/run_config.hpp"
#include "optim/optimizer.hpp"
#include "optim/sharding.hpp"

namespace quopt {

// kron_torch memory_save_mode: which dimensions get a diagonal factor regardless of their size.
enum class PsgdMemorySave { None, SmartOneDiag, OneDiag, AllDiag };
// How "update the preconditioner with probability p" is decided each step: Random = a Bernoulli(p) coin
// (psgd_torch KronWhiten: torch.rand([]) < p); Counter = kron_torch's deterministic form (update when a
// counter of steps since the last update reaches 1/p).
enum class PsgdTrigger { Random, Counter };

// optimizer.psgd.* (defaults and their sources: psgd_kron.cpp, add_psgd_keys).
// "kron_torch" = evanatyourservice/kron_torch kron_torch/kron.py @ 884427c (Kron.__init__ defaults,
// precond_update_prob_schedule, _clip_update_rms); "psgd_torch" = lixilinx/psgd_torch psgd.py @ a8616f1.
struct PsgdOptions {
  double b1 = 0.9;                                         // kron_torch b1
  std::int64_t max_size_triangular = 8192;                 // kron_torch max_size_triangular
  std::int64_t min_ndim_triangular = 2;                    // kron_torch min_ndim_triangular
  PsgdMemorySave memory_save_mode = PsgdMemorySave::None;  // kron_torch memory_save_mode=None
  bool momentum_into_precond_update = true;                // kron_torch momentum_into_precond_update
  double precond_lr = 0.1;                                 // kron_torch precond_lr
  double precond_init_scale = 1.0;                         // kron_torch precond_init_scale
  double update_prob_max = 1.0;                            // kron_torch precond_update_prob_schedule max_prob
  double update_prob_min = 0.03;                           // kron_torch ... min_prob
  double update_prob_decay = 0.001;                        // kron_torch ... decay
  std::int64_t update_prob_flat_start = 500;               // kron_torch ... flat_start
  PsgdTrigger update_trigger = PsgdTrigger::Random;        // psgd_torch KronWhiten.step coin (see above)
  double balance_prob = 0.01;                              // kron_torch: balance "roughly every 100 updates"
  double clip_rms = 1.1;                                   // kron_torch _clip_update_rms; 0 disables
};

// Adds the optimizer.psgd.* keys (with their doc strings and sources) to a schema.
void add_psgd_keys(Schema& s);
// Reads optimizer.psgd.* from a resolved config (whose schema has add_psgd_keys' keys) and checks the
// cross-key constraints; throws quopt::Error naming the keys.
PsgdOptions psgd_options(const Config& cfg);
// Probability of a preconditioner update at the step with `n` steps already taken (kron_torch
// ProbScheduler): clamp(max * exp(-decay * (n - flat_start)), min, max).
double psgd_update_probability(const PsgdOptions& o, std::int64_t n);

enum class PsgdFactorKind { None, Diagonal, Triangular };
// The factor kind of each dimension of a parameter of this shape (kron_torch _init_Q_exprs: diagonal
// for a dimension of size 1, larger than max_size_triangular, a tensor with fewer than
// min_ndim_triangular dimensions, or chosen by memory_save_mode; else upper triangular).
std::vector<PsgdFactorKind> psgd_factor_kinds(const Shape& shape, const PsgdOptions& o);

// The numerical steps of one parameter, on its matrix view [rows, cols] (a 1-D tensor [n] is viewed as
// [1, n] with no left factor), through the kernel API (kernels/psgd_ops.hpp), so on the device the
// tensors live on. The spectral-norm lower bound and the update clip are kernels::norm_lower_bound and
// kernels::clip_rms. Exposed for the unit tests.
namespace psgd_detail {

struct Factor {
  PsgdFactorKind kind = PsgdFactorKind::None;
  Tensor q;  // [n] (Diagonal) or [n, n] row-major upper triangular (Triangular); shares the state's storage
};

// One whitening update of both factors from the matrix G and the probe V (both [rows, cols], on the
// factors' device; neither is modified): Gn = G + sqrt(eps_f32) mean|G| V, A = Q1 Gn Q2^T,
// B = Q1^-T V Q2^-1, then per factor Q -= precond_lr * triu(A A^T - B B^T) / lb(A A^T + B B^T) * Q
// (triangular) or q -= precond_lr * (a - b) / max|a + b| * q (diagonal, a and b the row/column sums of
// squares), with the right factor using A^T A and B^T B. A factor whose update is not finite keeps its old
// value; returns the number of such rejected factor updates.
int update_factors(Factor& left, Factor& right, const Tensor& g, const Tensor& v, double precond_lr);
// x <- Q1^T Q1 x Q2^T Q2 in place (x is [rows, cols]).
void precondition(const Factor& left, const Factor& right, Tensor& x);
// kron_torch _balance_Q: scales the two factors so their max-abs entries equal their geometric mean
// (the product Q1 (x) Q2 is unchanged). No-op unless both factors exist.
void balance(Factor& left, Factor& right);

}  // namespace psgd_detail

class PsgdKron : public Optimizer {
 public:
  PsgdKron(const OptimizerConfig& cfg, const PsgdOptions& opt, ParameterSet& params,
           const OptimizerContext& ctx = {});
  std::string name() const override { return "psgd"; }
  void step(ParameterSet& params, double lr) override;
  // "<param>/momentum", "<param>/Q.<dim>" of the parameters this rank owns.
  std::vector<NamedTensor> state() override;

  const PsgdOptions& options() const { return opt_; }
  const ShardPlan& plan() const { return plan_; }
  // Whether the last step() updated the preconditioners, and whether it balanced them.
  bool last_step_updated_preconditioner() const { return last_update_; }
  bool last_step_balanced() const { return last_balance_; }
  // The factor kinds of parameter i (in ParameterSet order), per dimension of the parameter.
  const std::vector<PsgdFactorKind>& factor_kinds(std::size_t i) const { return slots_[i].kinds; }

 private:
  struct Slot {
    std::string name;
    ParamRole role = ParamRole::Hidden;
    Shape shape;
    std::int64_t rows = 1, cols = 1;    // matrix view
    std::vector<PsgdFactorKind> kinds;  // per dimension of the parameter
    Tensor momentum;                    // owner only
    std::vector<Tensor> q;              // owner only; one per dimension
  };
  bool decide_update(std::int64_t n, double prob);
  void compute_direction(std::size_t i, const Tensor& grad, bool do_update, bool do_balance, std::int64_t n);

  OptimizerConfig cfg_;
  PsgdOptions opt_;
  std::uint64_t seed_ = 0;
  std::vector<Slot> slots_;
  ShardPlan plan_;
  std::vector<Tensor> results_;  // update directions, one per parameter (every rank)
  // Counter trigger: the counter after `counter_step_` steps (recomputed after set_steps_taken).
  std::int64_t counter_ = 0, counter_step_ = 0;
  bool last_update_ = false, last_balance_ = false;
};

std::unique_ptr<Optimizer> make_psgd(const OptimizerConfig& cfg, ParameterSet& params,
                                     const OptimizerContext& ctx);

}  // namespace quopt
