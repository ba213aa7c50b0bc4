#pragma once
// Scion (Pethick et al. 2025, "Training Deep Learning Models with Norm-Constrained LMOs",
// arXiv 2502.07529; reference LIONS-EPFL/scion scion.py). Per parameter W with gradient G:
//     d = (1 - a) d + a G                     (a = optimizer.scion.momentum, "one minus momentum")
//     constrained:    W = (1 - lr) W - lr * scale * lmo(d)
//     unconstrained:  W =          W - lr * scale * lmo(d)
// with a linear minimisation oracle (LMO) and a radius (scale) per role:
//     hidden matrices   Spectral: NS5(d) * sqrt(d_out / d_in)
//     output head       Sign: sign(d) / d_in, or ColNorm: columns to RMS 1 / d_in
//                       (the tied embedding is the output head)
//     untied input emb. Sign: sign(d), or ColNorm: each embedding row to RMS 1
//     norm gains        BiasRMS: d / RMS(d)
// The hidden matrices' orthogonalisations are sharding work items (cost: NS5 GEMM flops); their
// momentum lives on the owner, which computes lmo(d); one all-gather shares them. The cheap LMOs
// (Sign, ColNorm, BiasRMS) run replicated. See docs/optimizers/scion.md.
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "io/run_config.hpp"
#include "optim/optimizer.hpp"
#include "optim/sharding.hpp"

namespace quopt {

enum class ScionLmo { Spectral, Sign, ColNorm, BiasRMS };

// The [optimizer.scion] keys. Sources: LIONS-EPFL/scion at commit f58a393 (2026-04-08): scion.py,
// examples/modded-nanogpt/train_gpt_scion.py (a tied-embedding GPT, the closest to quopt's model),
// examples/shallow-nanogpt/model.py (untied input embedding), examples/deit/main_scion.py (gains).
struct ScionOptions {
  double momentum = 0.1;  // README "A good default is 0.1"; train_gpt_scion.py momentum = 0.1
  bool unconstrained =
      false;         // scion.py Scion(unconstrained=False); train_gpt_scion.py unconstrained = False
  int ns_steps = 5;  // scion.py Spectral(steps=5); train_gpt_scion.py norm_kwargs {'steps': 5}
  double scale_hidden = 50.0;            // train_gpt_scion.py scale = 50 (Spectral group, transformer.h)
  ScionLmo output_lmo = ScionLmo::Sign;  // train_gpt_scion.py lm_head 'Sign' (normalized: / d_in)
  double scale_output = 3000.0;          // train_gpt_scion.py last_scale = 3000 (tied lm_head)
  ScionLmo input_lmo = ScionLmo::Sign;   // shallow-nanogpt model.py 'Mixed': wte 'Sign', normalized=False
  double scale_input = 1.0;              // shallow-nanogpt model.py 'Mixed': wte scale 1.0
  double scale_gain = 50.0;  // BiasRMS groups take the hidden radius: deit/main_scion.py, airbench_scion.py
};

void add_scion_keys(Schema& s);
ScionOptions scion_options(const Config& cfg);
const char* scion_lmo_name(ScionLmo l);

class Scion : public Optimizer {
 public:
  // cfg: lr (the reference's lr, gamma in the paper). cfg.weight_decay and cfg.decay_roles are not
  // used (Scion's constrained update is its weight decay, arXiv 2502.07529 Sec. 3; a warning is logged
  // if weight_decay != 0). tied_embeddings: the Embedding-role matrix is also the output head.
  Scion(const OptimizerConfig& cfg, const ScionOptions& opt, ParameterSet& params, bool tied_embeddings,
        MPI_Comm comm = MPI_COMM_SELF);
  std::string name() const override { return "scion"; }
  void step(ParameterSet& params, double lr) override;
  // "<param>/momentum_buffer": the hidden matrices this rank owns and every other parameter
  // (replicated); nothing when momentum = 1 (no averaging, as the reference keeps no buffer then).
  std::vector<NamedTensor> state() override;
  const ShardPlan& plan() const { return plan_; }
  // The LMO and radius a parameter gets.
  ScionLmo lmo_of(std::size_t param) const { return groups_[param].lmo; }
  double scale_of(std::size_t param) const { return groups_[param].scale; }

 private:
  struct Group {
    ScionLmo lmo = ScionLmo::Spectral;
    bool output = false;  // for Sign/ColNorm: the output head (normalised by d_in) vs the input embedding
    double scale = 1.0;
    std::ptrdiff_t item = -1;  // work item (hidden matrices), else -1
    Tensor momentum;           // owner / replicated; undefined when momentum == 1
    Tensor dir;                // lmo(d) of a replicated parameter
  };
  void apply_lmo(const Group& g, const Tensor& d, Tensor& out) const;  // by the kernels of kernels/ops.hpp

  OptimizerConfig cfg_;
  ScionOptions opt_;
  std::vector<std::string> names_;
  std::vector<Group> groups_;  // per parameter, ParameterSet order
  std::vector<std::size_t> item_param_;
  ShardPlan plan_;
  std::vector<Tensor> results_;
};

std::unique_ptr<Optimizer> make_scion(const OptimizerConfig& cfg, ParameterSet& params,
                                      const OptimizerContext& ctx);

}  // namespace quopt
