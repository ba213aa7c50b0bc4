#pragma once
// The OLMo2 model (arXiv 2501.00656) with the study's two changes (arXiv 2509.23500): tied
// input/output embeddings and a non-gated ReLU^2 MLP (SwiGLU selectable). Per block, "reordered"
// post-norm:   h = x + RMSNorm(Attn(x)),   y = h + RMSNorm(MLP(h)),
// Attn with QK-norm (RMSNorm over the whole q / k projections) and RoPE; no biases; a final RMSNorm
// before the (tied) head. Forward and backward are written by hand on the kernel API.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.hpp"
#include "model/config.hpp"
#include "model/linear.hpp"
#include "model/params.hpp"

namespace quopt {

// Activations one forward keeps for its backward (one per in-flight micro-batch).
struct BlockActivations {
  Tensor x;              // block input [N, C]
  Tensor q_raw, q_rstd;  // q before QK-norm and its rstd
  Tensor k_raw, k_rstd;
  Tensor q, k, v;    // after norm + RoPE: [B, T, H(kv), D]
  Tensor att, lse;   // attention output [N, H*D] and logsumexp
  Tensor o, o_rstd;  // attention projection output (pre post-norm)
  Tensor h;          // after attention residual
  Tensor u, g;       // MLP up (and gate for SwiGLU) pre-activation [N, F]
  Tensor a;          // MLP activation
  Tensor d, d_rstd;  // MLP down output (pre post-norm)
  // Caches of quantized linears (used only when a LinearQuant applies): q, k, v, o, up, gate, down.
  LinearCache lin[7];
};

struct Activations {
  // Set by the caller before the forward (a stage with the head reads them):
  //   head_dscale != 0: a training forward. The head runs as the fused classifier + cross-entropy
  //     (kernels/ops.hpp), which also computes the head's gradients, scaled by head_dscale: dz is kept
  //     for the backward and the head weight's gradient is accumulated during this forward. The
  //     backward must then get the same dscale.
  //   keep_logits: also keep the logits [N, V] (N x V memory; for callers that read them). Otherwise
  //     the head computes them a block of rows at a time and keeps only lse and token_loss.
  //   A head a LinearQuant applies to (QAT) always runs unfused: logits are kept and the backward
  //   computes the head's gradients through the quantizer; head_dscale is then not needed.
  double head_dscale = 0.0;
  bool keep_logits = false;

  std::int64_t batch = 0, seq = 0;
  Tensor tokens, targets;                // i32 [B, T]
  std::vector<BlockActivations> blocks;  // this stage's blocks, in order
  Tensor y;                              // last block output [N, C]
  Tensor z, z_rstd;                      // final norm output
  Tensor logits, lse, token_loss;        // [N, V] (keep_logits or a quantized head only), [N], [N]
  Tensor dz;                             // head_dscale * dL/dz [N, C] (fused training forward only)
  LinearCache head_lin;                  // cache of a quantized head (LinearQuant applies to "head")
};

struct LossSum {
  double sum = 0.0;        // sum over counted tokens of (cross-entropy + z-loss)
  std::int64_t count = 0;  // counted (non-ignored) target tokens
};

// The part of the model one pipeline stage owns: blocks [first_block, last_block), the embedding
// on the first stage, the final norm and head on the last. A tied head on a last stage that does not
// also hold the embedding keeps its own copy of the embedding matrix (same name, same init), whose
// gradient is combined with the first stage's before the update (parallel/pipeline).
struct StageSpec {
  std::int64_t first_block = 0, last_block = -1;  // -1: up to n_layers
  bool embedding = true, head = true;
};

class Olmo2 {
 public:
  // dev: where parameters, gradients and activations live (Device::Cuda: every op runs on the GPU;
  // batches still arrive as host token tensors, are range-checked on the host and uploaded).
  explicit Olmo2(const ModelConfig& cfg, DType dt = DType::F32, StageSpec stage = {}, Device dev = Device::Host);
  Device device() const { return dev_; }
  const StageSpec& stage() const { return stage_; }

  const ModelConfig& config() const { return cfg_; }
  // Quantized arithmetic for the linears it selects, the block linears by parameter name and the output
  // projection as "head" (nullptr: exact); see model/linear.hpp.
  void set_linear_quant(std::shared_ptr<const LinearQuant> q) { quant_ = std::move(q); }
  const LinearQuant* linear_quant() const { return quant_.get(); }
  // Observer of every block linear's input during forwards (nullptr: none).
  void set_linear_observer(LinearObserver obs) { observer_ = std::move(obs); }
  DType dtype() const { return dt_; }
  ParameterSet& params() { return params_; }
  const ParameterSet& params() const { return params_; }

  // OLMo2 init: every matrix N(0, init_std) truncated at init_trunc * init_std; RMSNorm gains 1.
  // Each tensor draws from its own stream (seed, hash(name)): independent of rank layout.
  void init(std::uint64_t seed);

  // Forward of one micro-batch: tokens, targets i32 [B, T] (target < 0: ignored). Keeps what the
  // backward needs in `act` and returns the summed loss.
  LossSum forward(const Tensor& tokens, const Tensor& targets, Activations& act) const;
  // Backward of that forward: parameter gradients += dscale * d(sum of losses)/d(param).
  void backward(Activations& act, double dscale);

  // The module chain of the ABC analysis (docs/analysis.md): every RMSNorm is a module of its own and
  // attention is one unit, as the paper's analysis (arXiv 2509.23500). Module 0 is the embedding
  // (tokens -> x); then for block i:
  //   1+4i  block.NN.attn       x -> [x ; o],   o = Attn(x) (QK-norm, RoPE, attention and attn_o)
  //   2+4i  block.NN.attn_norm  [x ; o] -> h = x + RMSNorm(o)
  //   3+4i  block.NN.mlp        h -> [h ; d],   d = MLP(h)
  //   4+4i  block.NN.mlp_norm   [h ; d] -> y = h + RMSNorm(d)
  // then final_norm (y -> z) and head (z -> logits). A branch module (attn, mlp) returns a packed
  // [2, B*T, C] tensor: [0] is its input, the residual stream, passed through unchanged, [1] the
  // branch output; module_value() is the branch output, the part the decomposition measures. The
  // residual add sits in the norm module after the branch because that is where the forward has one
  // tensor again (the residual stream) that carries everything the rest of the network reads. Composing
  // the modules in order is forward() exactly (same kernels, same order). Whole model only.
  std::int64_t module_count() const;
  // embed, block.NN.attn, block.NN.attn_norm, block.NN.mlp, block.NN.mlp_norm, final_norm, head
  std::string module_name(std::int64_t m) const;
  // Module m on its input (tokens i32 [B, T] for module 0, a packed [2, B*T, C] state for the norm
  // modules after a branch, else [B*T, C]); returns its output.
  Tensor module_forward(std::int64_t m, const Tensor& input, std::int64_t batch, std::int64_t seq) const;
  // The measured value of module m's output: the branch output [B*T, C] of a branch module (a view of
  // `output`), `output` itself for every other module.
  Tensor module_value(std::int64_t m, const Tensor& output) const;

  // Pipeline-stage forms. forward_stage: the input is tokens i32 [B, T] on a stage with the embedding,
  // else the previous stage's output [B*T, C]; returns this stage's output [B*T, C], or, on a stage
  // with the head, the logits-side result in *loss (the returned tensor is then undefined).
  Tensor forward_stage(const Tensor& input, const Tensor& targets, std::int64_t batch, std::int64_t seq,
                       Activations& act, LossSum* loss) const;
  // backward_stage: dy is the gradient of this stage's output (ignored on the head stage, which starts
  // from the loss scaled by dscale); returns the gradient of the stage input (undefined on the first stage).
  // on_block_done(i), if set, is called once block i's parameter gradients are complete for this call.
  Tensor backward_stage(Activations& act, const Tensor& dy, double dscale,
                        const std::function<void(std::int64_t)>& on_block_done = {});

 private:
  struct BlockParams {
    Parameter *q, *k, *v, *o, *q_norm, *k_norm, *attn_norm, *up, *gate, *down, *mlp_norm;
  };
  void block_forward(const BlockParams& w, const Tensor& x, std::int64_t B, std::int64_t T,
                     BlockActivations& c, Tensor& y) const;
  // The two halves of a block, each split at its post-norm: attn_branch computes c.o = Attn(x),
  // attn_residual c.h = c.x + RMSNorm(c.o); mlp_branch c.d = MLP(c.h), mlp_residual y = c.h + RMSNorm(c.d).
  void attn_branch(const BlockParams& w, const Tensor& x, std::int64_t B, std::int64_t T,
                   BlockActivations& c) const;
  void attn_residual(const BlockParams& w, BlockActivations& c) const;
  void mlp_branch(const BlockParams& w, std::int64_t B, std::int64_t T, BlockActivations& c) const;
  void mlp_residual(const BlockParams& w, BlockActivations& c, Tensor& y) const;
  // Kind of module m of the chain (m in [1, module_count() - 2)).
  enum class ModuleKind { Attn, AttnNorm, Mlp, MlpNorm };
  ModuleKind module_kind(std::int64_t m) const { return static_cast<ModuleKind>((m - 1) % 4); }
  void block_backward(BlockParams& w, BlockActivations& c, std::int64_t B, std::int64_t T, const Tensor& dy,
                      Tensor& dx);
  Tensor new_tensor(const Shape& s) const { return Tensor::empty(s, dt_, dev_); }
  // tokens (and targets) i32 on the host, range-checked, on this model's device.
  Tensor device_tokens(const Tensor& tokens, const char* what, bool allow_negative) const;
  // The fused head over act.z: losses into act.token_loss / act.lse, and with dz defined the gradients
  // (dz written, the head weight's gradient accumulated). Returns the loss sum.
  double fused_head(Activations& act, double dscale, Tensor& dz) const;
  // Scratch rows of the fused head, kept across calls: [rows, V] (see olmo2.cpp for the row count).
  Tensor& head_work(std::int64_t n_rows) const;
  enum Lin { kQ, kK, kV, kO, kUp, kGate, kDown };
  void linear_fwd(std::int64_t block, Lin which, const Tensor& x, const Parameter& w, Tensor& y,
                  BlockActivations& c) const;
  void linear_bwd(Lin which, const Tensor& dy, const Tensor& x, Parameter& w, BlockActivations& c, Tensor& dx,
                  bool accumulate_dx) const;
  // The output projection logits = z W_head^T, through the LinearQuant when it applies to "head".
  void head_fwd(const Tensor& z, Tensor& logits, LinearCache& cache) const;
  void head_bwd(const Tensor& dlogits, const Tensor& z, const LinearCache& cache, Tensor& dz);

  ModelConfig cfg_;
  DType dt_;
  StageSpec stage_;
  Device dev_ = Device::Host;
  ParameterSet params_;
  Parameter* embed_ = nullptr;
  Parameter* head_ = nullptr;  // == embed_ when tied
  Parameter* final_norm_ = nullptr;
  std::vector<BlockParams> blocks_;
  std::shared_ptr<const LinearQuant> quant_;
  LinearObserver observer_;
  mutable Tensor head_work_;
};

// Name, role and shape of every parameter a stage holds, in construction order (no allocation).
struct ParamSpec {
  std::string name;
  ParamRole role;
  Shape shape;
};
std::vector<ParamSpec> olmo2_param_specs(const ModelConfig& cfg, StageSpec stage = {});

// Block-layer names used in parameter names and HDF5 groups: "block.00", "block.01", ...
std::string block_name(std::int64_t i);

}  // namespace quopt
