#pragma once
// Muon (MomentUm Orthogonalized by Newton-Schulz; Jordan et al. 2024, KellerJordan/Muon) for the
// hidden weight matrices, with an AdamW side optimizer for embeddings, an untied head and norm gains
// (the reference's MuonWithAuxAdam routing). Per hidden matrix W [rows, cols] with gradient G:
//     buf = mu buf + G;   U = G + mu buf (Nesterov) or buf;   O = NS5(U) * sqrt(max(1, rows / cols))
//     W = (1 - lr wd) W - lr O
// The orthogonalisation of each hidden matrix is a sharding work item (cost: the GEMM flops of NS5);
// its momentum buffer lives only on the owning rank, which computes O; one all-gather shares every O.
// The AdamW side runs replicated on every rank. See docs/optimizers/muon.md.
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "io/run_config.hpp"
#include "optim/optimizer.hpp"
#include "optim/sharding.hpp"

namespace quopt {

// The [optimizer.muon] keys. Defaults: KellerJordan/Muon muon.py at commit 857d1ad (2025-11-23).
struct MuonOptions {
  double momentum = 0.95;  // Muon(momentum=0.95), muon_update(beta=0.95)
  bool nesterov = true;    // muon_update(nesterov=True)
  int ns_steps = 5;        // muon_update(ns_steps=5)
  // AdamW side optimizer (embedding, untied head, gains): MuonWithAuxAdam's defaults for groups with
  // use_muon=False: lr 3e-4, betas (0.9, 0.95), eps 1e-10, weight_decay 0.
  double adam_lr = 3e-4;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.95;
  double adam_eps = 1e-10;
  double adam_weight_decay = 0.0;
};

// Adds the optimizer.muon.* keys (with doc strings citing each default) to a schema.
void add_muon_keys(Schema& s);
// Reads optimizer.muon.* from a resolved config whose schema has the keys of add_muon_keys.
MuonOptions muon_options(const Config& cfg);

class Muon : public Optimizer {
 public:
  // cfg: lr (the Muon lr the schedule is relative to), weight_decay and decay_roles (decoupled decay of
  // the hidden matrices when decay_roles names "hidden"; of side parameters, by adam_weight_decay, when
  // it names their role). comm: the data-parallel group the orthogonalisations are sharded over.
  Muon(const OptimizerConfig& cfg, const MuonOptions& opt, ParameterSet& params,
       MPI_Comm comm = MPI_COMM_SELF);
  std::string name() const override { return "muon"; }
  // lr is the scheduled Muon learning rate; the side AdamW uses adam_lr * lr / cfg.lr (the same schedule).
  void step(ParameterSet& params, double lr) override;
  // "<param>/momentum_buffer" for the hidden matrices this rank owns; "<param>/exp_avg" and
  // "<param>/exp_avg_sq" for every side parameter (replicated).
  std::vector<NamedTensor> state() override;
  const ShardPlan& plan() const { return plan_; }

 private:
  struct Matrix {
    std::size_t param = 0;   // index in ParameterSet order
    Tensor momentum;         // defined on the owner only
    double shape_scale = 1;  // sqrt(max(1, rows / cols))
  };
  struct Side {
    std::size_t param = 0;
    Tensor m, v;
  };
  OptimizerConfig cfg_;
  MuonOptions opt_;
  std::vector<std::string> names_;  // parameter names in ParameterSet order (checked every step)
  std::vector<Matrix> matrices_;    // item i of plan_ is matrices_[i]
  std::vector<Side> side_;
  ShardPlan plan_;
  std::vector<Tensor> results_;  // O per matrix, every rank
};

std::unique_ptr<Optimizer> make_muon(const OptimizerConfig& cfg, ParameterSet& params,
                                     const OptimizerContext& ctx);

}  // namespace quopt
