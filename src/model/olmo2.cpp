#include "model/olmo2.hpp"

#include <algorithm>
#include <cstdio>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "kernels/ops.hpp"

namespace quopt {

namespace k = kernels;

std::string block_name(std::int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "block.%02lld", static_cast<long long>(i));
  return buf;
}

namespace {
// y = x W^T for x [N, in], W [out, in].
void linear_forward(const Tensor& x, const Parameter& w, Tensor& y) {
  k::matmul(x, false, w.value, true, y);
}
// dx (+)= dy W ; dW += dy^T x.
void linear_backward(const Tensor& dy, const Tensor& x, Parameter& w, Tensor& dx, bool accumulate_dx) {
  k::matmul(dy, false, w.value, false, dx, 1.0, accumulate_dx ? 1.0 : 0.0);
  k::matmul(dy, true, x, false, w.grad, 1.0, 1.0);
}
}  // namespace

std::vector<ParamSpec> olmo2_param_specs(const ModelConfig& cfg, StageSpec stage) {
  if (stage.last_block < 0) stage.last_block = cfg.n_layers;
  const std::int64_t C = cfg.d_model, D = cfg.head_dim(), F = cfg.mlp_hidden();
  const std::int64_t Hq = cfg.n_heads * D, Hkv = cfg.n_kv_heads * D;
  std::vector<ParamSpec> out;
  if (stage.embedding || (stage.head && cfg.tie_embeddings))
    out.push_back({"embed/weight", ParamRole::Embedding, {cfg.vocab_size, C}});
  for (std::int64_t i = stage.first_block; i < stage.last_block; ++i) {
    const std::string b = block_name(i) + "/";
    out.push_back({b + "attn_q", ParamRole::Hidden, {Hq, C}});
    out.push_back({b + "attn_k", ParamRole::Hidden, {Hkv, C}});
    out.push_back({b + "attn_v", ParamRole::Hidden, {Hkv, C}});
    out.push_back({b + "attn_o", ParamRole::Hidden, {C, Hq}});
    if (cfg.qk_norm) {
      out.push_back({b + "q_norm", ParamRole::Gain, {Hq}});
      out.push_back({b + "k_norm", ParamRole::Gain, {Hkv}});
    }
    out.push_back({b + "attn_norm", ParamRole::Gain, {C}});
    if (cfg.mlp == MlpKind::SwiGLU) out.push_back({b + "mlp_gate", ParamRole::Hidden, {F, C}});
    out.push_back({b + "mlp_up", ParamRole::Hidden, {F, C}});
    out.push_back({b + "mlp_down", ParamRole::Hidden, {C, F}});
    out.push_back({b + "mlp_norm", ParamRole::Gain, {C}});
  }
  if (stage.head) {
    out.push_back({"final_norm/weight", ParamRole::Gain, {C}});
    if (!cfg.tie_embeddings) out.push_back({"head/weight", ParamRole::Head, {cfg.vocab_size, C}});
  }
  return out;
}

Olmo2::Olmo2(const ModelConfig& cfg, DType dt, StageSpec stage, Device dev)
    : cfg_(cfg), dt_(dt), stage_(stage), dev_(dev) {
  QUOPT_CHECK(dt == DType::F32 || dt == DType::F64, "the model runs in f32 or f64, not ", dtype_name(dt));
  QUOPT_CHECK(device_available(dev), "the model was asked to live on ", device_name(dev),
              " but no such device is available (no GPU visible, or a build without -DQUOPT_ENABLE_CUDA=ON)");
  if (stage_.last_block < 0) stage_.last_block = cfg.n_layers;
  QUOPT_CHECK(
      0 <= stage_.first_block && stage_.first_block <= stage_.last_block && stage_.last_block <= cfg.n_layers,
      "stage blocks [", stage_.first_block, ", ", stage_.last_block, ") outside [0, ", cfg.n_layers, ")");
  for (const auto& spec : olmo2_param_specs(cfg, stage_)) params_.add(spec.name, spec.role, spec.shape, dt, dev);
  auto find = [&](const std::string& n) { return params_.contains(n) ? &params_.get(n) : nullptr; };
  embed_ = find("embed/weight");
  for (std::int64_t i = stage_.first_block; i < stage_.last_block; ++i) {
    const std::string b = block_name(i) + "/";
    BlockParams w{};
    w.q = find(b + "attn_q");
    w.k = find(b + "attn_k");
    w.v = find(b + "attn_v");
    w.o = find(b + "attn_o");
    w.q_norm = find(b + "q_norm");
    w.k_norm = find(b + "k_norm");
    w.attn_norm = find(b + "attn_norm");
    w.gate = find(b + "mlp_gate");
    w.up = find(b + "mlp_up");
    w.down = find(b + "mlp_down");
    w.mlp_norm = find(b + "mlp_norm");
    blocks_.push_back(w);
  }
  final_norm_ = find("final_norm/weight");
  head_ = cfg.tie_embeddings ? (stage_.head ? embed_ : nullptr) : find("head/weight");
}

void Olmo2::init(std::uint64_t seed) {
  for (auto& p : params_.all()) {
    if (p.role == ParamRole::Gain) {
      k::fill(p.value, 1.0);
      continue;
    }
    Rng rng(seed, hash_name(p.name));
    const std::int64_t n = p.value.numel();
    // Drawn on the host (the same numbers whatever the device), then copied to the device.
    Tensor host = p.value.is_host() ? p.value : Tensor::empty(p.value.shape(), dt_);
    if (dt_ == DType::F64) {
      double* x = host.data<double>();
      for (std::int64_t i = 0; i < n; ++i) x[i] = rng.truncated_normal(cfg_.init_std, cfg_.init_trunc);
    } else {
      float* x = host.data<float>();
      for (std::int64_t i = 0; i < n; ++i)
        x[i] = static_cast<float>(rng.truncated_normal(cfg_.init_std, cfg_.init_trunc));
    }
    if (!p.value.is_host()) p.value.copy_from(host);
  }
}

void Olmo2::attn_branch(const BlockParams& w, const Tensor& x, std::int64_t B, std::int64_t T,
                        BlockActivations& c) const {
  const std::int64_t blk = stage_.first_block + (&w - blocks_.data());
  const std::int64_t N = B * T, C = cfg_.d_model, D = cfg_.head_dim();
  const std::int64_t H = cfg_.n_heads, Hkv = cfg_.n_kv_heads;
  c.x = x;
  c.q_raw = new_tensor({N, H * D});
  c.k_raw = new_tensor({N, Hkv * D});
  c.v = new_tensor({N, Hkv * D});
  linear_fwd(blk, kQ, x, *w.q, c.q_raw, c);
  linear_fwd(blk, kK, x, *w.k, c.k_raw, c);
  linear_fwd(blk, kV, x, *w.v, c.v, c);
  if (cfg_.qk_norm) {
    c.q = new_tensor({N, H * D});
    c.k = new_tensor({N, Hkv * D});
    c.q_rstd = new_tensor({N});
    c.k_rstd = new_tensor({N});
    k::rmsnorm_forward(c.q_raw, w.q_norm->value, cfg_.norm_eps, c.q, c.q_rstd);
    k::rmsnorm_forward(c.k_raw, w.k_norm->value, cfg_.norm_eps, c.k, c.k_rstd);
  } else {
    c.q = c.q_raw.clone();
    c.k = c.k_raw.clone();
  }
  c.q = c.q.reshape({B, T, H, D});
  c.k = c.k.reshape({B, T, Hkv, D});
  c.v = c.v.reshape({B, T, Hkv, D});
  k::rope_forward(c.q, cfg_.rope_theta);
  k::rope_forward(c.k, cfg_.rope_theta);
  c.att = new_tensor({B, T, H, D});
  c.lse = new_tensor({B, H, T});
  k::attention_forward(c.q, c.k, c.v, c.att, c.lse);
  c.att = c.att.reshape({N, H * D});
  c.o = new_tensor({N, C});
  linear_fwd(blk, kO, c.att, *w.o, c.o, c);
}

void Olmo2::attn_residual(const BlockParams& w, BlockActivations& c) const {
  const std::int64_t N = c.o.dim(0), C = cfg_.d_model;
  c.o_rstd = new_tensor({N});
  c.h = new_tensor({N, C});
  k::rmsnorm_forward(c.o, w.attn_norm->value, cfg_.norm_eps, c.h, c.o_rstd);
  k::add(c.x, c.h, c.h);  // h = x + RMSNorm(Attn(x))
}

void Olmo2::mlp_branch(const BlockParams& w, std::int64_t B, std::int64_t T, BlockActivations& c) const {
  const std::int64_t blk = stage_.first_block + (&w - blocks_.data());
  const std::int64_t N = B * T, C = cfg_.d_model, F = cfg_.mlp_hidden();
  c.u = new_tensor({N, F});
  c.a = new_tensor({N, F});
  linear_fwd(blk, kUp, c.h, *w.up, c.u, c);
  if (cfg_.mlp == MlpKind::SwiGLU) {
    c.g = new_tensor({N, F});
    linear_fwd(blk, kGate, c.h, *w.gate, c.g, c);
    k::swiglu_forward(c.g, c.u, c.a);
  } else {
    k::relu2_forward(c.u, c.a);
  }
  c.d = new_tensor({N, C});
  linear_fwd(blk, kDown, c.a, *w.down, c.d, c);
}

void Olmo2::mlp_residual(const BlockParams& w, BlockActivations& c, Tensor& y) const {
  c.d_rstd = new_tensor({c.d.dim(0)});
  k::rmsnorm_forward(c.d, w.mlp_norm->value, cfg_.norm_eps, y, c.d_rstd);
  k::add(c.h, y, y);  // y = h + RMSNorm(MLP(h))
}

namespace {
const char* const kLinName[] = {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_gate", "mlp_down"};
const std::string kHeadName = "head";
}

void Olmo2::linear_fwd(std::int64_t block, Lin which, const Tensor& x, const Parameter& w, Tensor& y,
                       BlockActivations& c) const {
  if (observer_) observer_(block, kLinName[which], x, w.value);
  if (quant_ && quant_->applies(kLinName[which]))
    quant_->forward(x, w.value, y, c.lin[which]);
  else
    linear_forward(x, w, y);
}

void Olmo2::linear_bwd(Lin which, const Tensor& dy, const Tensor& x, Parameter& w, BlockActivations& c,
                       Tensor& dx, bool accumulate_dx) const {
  if (quant_ && quant_->applies(kLinName[which]))
    quant_->backward(dy, x, w.value, c.lin[which], dx, accumulate_dx, w.grad);
  else
    linear_backward(dy, x, w, dx, accumulate_dx);
}

void Olmo2::head_fwd(const Tensor& z, Tensor& logits, LinearCache& cache) const {
  if (quant_ && quant_->applies(kHeadName))
    quant_->forward(z, head_->value, logits, cache);
  else
    linear_forward(z, *head_, logits);
}

void Olmo2::head_bwd(const Tensor& dlogits, const Tensor& z, const LinearCache& cache, Tensor& dz) {
  if (quant_ && quant_->applies(kHeadName))
    quant_->backward(dlogits, z, head_->value, cache, dz, false, head_->grad);
  else
    linear_backward(dlogits, z, *head_, dz, false);
}

void Olmo2::block_forward(const BlockParams& w, const Tensor& x, std::int64_t B, std::int64_t T,
                          BlockActivations& c, Tensor& y) const {
  attn_branch(w, x, B, T, c);
  attn_residual(w, c);
  mlp_branch(w, B, T, c);
  mlp_residual(w, c, y);
}

std::int64_t Olmo2::module_count() const {
  return 4 * cfg_.n_layers + 3;
}

std::string Olmo2::module_name(std::int64_t m) const {
  QUOPT_CHECK(m >= 0 && m < module_count(), "module ", m, " out of range [0, ", module_count(), ")");
  if (m == 0) return "embed";
  if (m == module_count() - 2) return "final_norm";
  if (m == module_count() - 1) return "head";
  static const char* const kSuffix[] = {".attn", ".attn_norm", ".mlp", ".mlp_norm"};
  return block_name((m - 1) / 4) + kSuffix[(m - 1) % 4];
}

Tensor Olmo2::module_value(std::int64_t m, const Tensor& output) const {
  QUOPT_CHECK(m >= 0 && m < module_count(), "module ", m, " out of range [0, ", module_count(), ")");
  if (m == 0 || m >= module_count() - 2) return output;
  const ModuleKind kind = module_kind(m);
  if (kind != ModuleKind::Attn && kind != ModuleKind::Mlp) return output;
  QUOPT_CHECK(output.ndim() == 3 && output.dim(0) == 2, "module ", module_name(m),
              " returns a packed [2, tokens, d_model] state, got ", output.describe());
  return output.slice(1, 2).reshape({output.dim(1), output.dim(2)});
}

Tensor Olmo2::module_forward(std::int64_t m, const Tensor& input, std::int64_t B, std::int64_t T) const {
  QUOPT_CHECK(
      stage_.embedding && stage_.head && stage_.first_block == 0 && stage_.last_block == cfg_.n_layers,
      "module_forward needs the whole model");
  const std::int64_t N = B * T, C = cfg_.d_model;
  QUOPT_CHECK(m >= 0 && m < module_count(), "module ", m, " out of range [0, ", module_count(), ")");
  if (m == 0) {
    QUOPT_CHECK(input.dtype() == DType::I32 && input.numel() == N, "module 0 (embed) takes i32 tokens [", B,
                ", ", T, "], got ", input.describe());
    Tensor x = new_tensor({N, C});
    k::embedding_forward(device_tokens(input, "tokens", false).reshape({N}), embed_->value, x);
    return x;
  }
  const bool packed_in = m < module_count() - 2 &&
                         (module_kind(m) == ModuleKind::AttnNorm || module_kind(m) == ModuleKind::MlpNorm);
  const std::int64_t parts = packed_in ? 2 : 1;
  QUOPT_CHECK(input.dtype() == dt_ && input.numel() == parts * N * C, "module ", module_name(m), " takes ",
              packed_in ? "a packed [2, " : "[", N, ", ", C, "], got ", input.describe());
  if (m == module_count() - 2) {
    Tensor z = new_tensor({N, C}), rstd = new_tensor({N});
    k::rmsnorm_forward(input.reshape({N, C}), final_norm_->value, cfg_.norm_eps, z, rstd);
    return z;
  }
  if (m == module_count() - 1) {
    Tensor logits = new_tensor({N, cfg_.vocab_size});
    LinearCache cache;
    head_fwd(input.reshape({N, C}), logits, cache);
    return logits;
  }
  const auto& w = blocks_[static_cast<std::size_t>((m - 1) / 4)];
  BlockActivations c;
  auto pack = [&](const Tensor& residual, const Tensor& branch) {
    Tensor out = new_tensor({2, N, C});
    out.slice(0, 1).reshape({N, C}).copy_from(residual);
    out.slice(1, 2).reshape({N, C}).copy_from(branch);
    return out;
  };
  auto part = [&](std::int64_t i) { return input.reshape({2, N, C}).slice(i, i + 1).reshape({N, C}); };
  switch (module_kind(m)) {
    case ModuleKind::Attn: {
      const Tensor x = input.reshape({N, C});
      attn_branch(w, x, B, T, c);
      return pack(x, c.o);
    }
    case ModuleKind::AttnNorm:
      c.x = part(0);
      c.o = part(1);
      attn_residual(w, c);
      return c.h;
    case ModuleKind::Mlp:
      c.h = input.reshape({N, C});
      mlp_branch(w, B, T, c);
      return pack(c.h, c.d);
    case ModuleKind::MlpNorm: {
      c.h = part(0);
      c.d = part(1);
      Tensor y = new_tensor({N, C});
      mlp_residual(w, c, y);
      return y;
    }
  }
  fail("module ", m, ": unknown kind");
}

LossSum Olmo2::forward(const Tensor& tokens, const Tensor& targets, Activations& act) const {
  QUOPT_CHECK(stage_.embedding && stage_.head,
              "forward() needs the whole model; use forward_stage on a stage");
  QUOPT_CHECK(tokens.ndim() == 2, "model input must be i32 [batch, seq], got ", tokens.describe());
  LossSum out;
  forward_stage(tokens, targets, tokens.dim(0), tokens.dim(1), act, &out);
  return out;
}

Tensor Olmo2::forward_stage(const Tensor& input, const Tensor& targets, std::int64_t B, std::int64_t T,
                            Activations& act, LossSum* loss) const {
  const std::int64_t N = B * T, C = cfg_.d_model, V = cfg_.vocab_size;
  QUOPT_CHECK(T <= cfg_.seq_len, "sequence length ", T, " exceeds model.seq_len = ", cfg_.seq_len);
  act.batch = B;
  act.seq = T;
  act.blocks.assign(blocks_.size(), BlockActivations{});
  Tensor x;
  if (stage_.embedding) {
    QUOPT_CHECK(input.dtype() == DType::I32 && input.numel() == N, "model input must be i32 [", B, ", ", T,
                "], got ", input.describe());
    act.tokens = device_tokens(input, "tokens", false);
    x = new_tensor({N, C});
    k::embedding_forward(act.tokens.reshape({N}), embed_->value, x);
  } else {
    QUOPT_CHECK(input.dtype() == dt_ && input.numel() == N * C, "stage input must be [", N, ", ", C,
                "], got ", input.describe());
    x = input.reshape({N, C});
  }
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    Tensor y = new_tensor({N, C});
    block_forward(blocks_[i], x, B, T, act.blocks[i], y);
    x = y;
  }
  act.y = x;
  if (!stage_.head) return x;

  QUOPT_CHECK(targets.dtype() == DType::I32 && targets.numel() == N, "targets must be i32 [", B, ", ", T,
              "], got ", targets.describe());
  act.targets = device_tokens(targets, "targets", true);
  act.z = new_tensor({N, C});
  act.z_rstd = new_tensor({N});
  k::rmsnorm_forward(act.y, final_norm_->value, cfg_.norm_eps, act.z, act.z_rstd);
  act.lse = new_tensor({N});
  act.token_loss = new_tensor({N});
  LossSum out;
  // A quantized head (QAT's LinearQuant) runs unfused: its forward and backward are the quantizer's.
  if (act.keep_logits || (quant_ && quant_->applies(kHeadName))) {
    act.logits = new_tensor({N, V});
    head_fwd(act.z, act.logits, act.head_lin);
    out.sum = k::cross_entropy_forward(act.logits, act.targets.reshape({N}), cfg_.z_loss, act.token_loss, act.lse);
  } else {
    if (act.head_dscale != 0.0) act.dz = new_tensor({N, C});
    out.sum = fused_head(act, act.head_dscale, act.dz);
  }
  const std::int32_t* t = targets.data<std::int32_t>();
  for (std::int64_t i = 0; i < N; ++i) out.count += t[i] >= 0 ? 1 : 0;
  if (loss) *loss = out;
  return Tensor();
}

Tensor Olmo2::device_tokens(const Tensor& tokens, const char* what, bool allow_negative) const {
  if (dev_ == Device::Host || !tokens.is_host()) return tokens;
  // The device kernels cannot report a bad id; check here, where the batch is still on the host.
  const std::int32_t* t = tokens.data<std::int32_t>();
  for (std::int64_t i = 0; i < tokens.numel(); ++i) {
    QUOPT_CHECK((allow_negative || t[i] >= 0) && t[i] < cfg_.vocab_size, what, "[", i, "] = ", t[i],
                " is outside the vocabulary [0, ", cfg_.vocab_size,
                "); the tokenizer and model.vocab_size disagree");
  }
  return tokens.to(dev_);
}

namespace {
// Rows of logits the fused head computes at a time: the micro-batch's N rows in the fewest blocks of at
// most kHeadWorkBytes each (at least kHeadMinRows rows), split evenly (2048 rows of a 100352-token
// vocabulary: 4 blocks of 512, not 3 of 668 and one of 44). Each block's weight-gradient GEMM reads and
// writes all of dW [V, C] and its three GEMMs have the block's rows as one dimension, so fewer, taller
// blocks run faster: olmo2-50m at one thread, 2048 tokens per step, 64 MiB blocks (167 rows) -> 256 MiB
// (balanced 512 rows) gave 1.10x tokens per CPU-second for 1.27x peak RSS, still 0.36 of PyTorch
// eager's (scripts/compare_builds.py; docs/benchmarks.md, the notes table under "Host threads"). A tuning
// choice (quopt's); results depend on it only through summation order.
constexpr std::int64_t kHeadWorkBytes = std::int64_t{256} << 20;
constexpr std::int64_t kHeadMinRows = 64;
}  // namespace

Tensor& Olmo2::head_work(std::int64_t n_rows) const {
  const std::int64_t V = cfg_.vocab_size;
  const std::int64_t fit = kHeadWorkBytes / (V * static_cast<std::int64_t>(dtype_size(dt_)));
  const std::int64_t most = std::max<std::int64_t>(1, std::min(n_rows, std::max(kHeadMinRows, fit)));
  const std::int64_t blocks = std::max<std::int64_t>(1, (n_rows + most - 1) / most);
  const std::int64_t rows = (n_rows + blocks - 1) / blocks;
  if (!head_work_.defined() || head_work_.dim(0) != rows) head_work_ = new_tensor({rows, V});
  return head_work_;
}

double Olmo2::fused_head(Activations& act, double dscale, Tensor& dz) const {
  const std::int64_t N = act.z.dim(0);
  Tensor none;
  Tensor& dw = dz.defined() ? head_->grad : none;
  return k::classifier_cross_entropy(act.z, head_->value, act.targets.reshape({N}), cfg_.z_loss, dscale,
                                     act.token_loss, act.lse, dz, dw, head_work(N));
}

void Olmo2::block_backward(BlockParams& w, BlockActivations& c, std::int64_t B, std::int64_t T,
                           const Tensor& dy, Tensor& dx) {
  const std::int64_t N = B * T, C = cfg_.d_model, D = cfg_.head_dim(), F = cfg_.mlp_hidden();
  const std::int64_t H = cfg_.n_heads, Hkv = cfg_.n_kv_heads;
  // y = h + RMSNorm(d), d = act(u) W_down^T
  Tensor dh = dy.clone();
  Tensor dd = new_tensor({N, C});
  k::rmsnorm_backward(dy, c.d, w.mlp_norm->value, c.d_rstd, dd, w.mlp_norm->grad);
  Tensor da = new_tensor({N, F});
  linear_bwd(kDown, dd, c.a, *w.down, c, da, false);
  Tensor du = new_tensor({N, F});
  if (cfg_.mlp == MlpKind::SwiGLU) {
    Tensor dg = new_tensor({N, F});
    k::swiglu_backward(da, c.g, c.u, dg, du);
    linear_bwd(kGate, dg, c.h, *w.gate, c, dh, true);
  } else {
    k::relu2_backward(da, c.u, du);
  }
  linear_bwd(kUp, du, c.h, *w.up, c, dh, true);

  // h = x + RMSNorm(o), o = Attn(q, k, v) W_o^T
  dx.copy_from(dh);
  Tensor dout = new_tensor({N, C});
  k::rmsnorm_backward(dh, c.o, w.attn_norm->value, c.o_rstd, dout, w.attn_norm->grad);
  Tensor datt = new_tensor({N, H * D});
  linear_bwd(kO, dout, c.att, *w.o, c, datt, false);
  Tensor dq = new_tensor({B, T, H, D}), dk = new_tensor({B, T, Hkv, D}), dv = new_tensor({B, T, Hkv, D});
  k::attention_backward(datt.reshape({B, T, H, D}), c.q, c.k, c.v, c.att.reshape({B, T, H, D}), c.lse, dq, dk,
                        dv);
  k::rope_backward(dq, cfg_.rope_theta);
  k::rope_backward(dk, cfg_.rope_theta);
  Tensor dq_raw = dq.reshape({N, H * D}), dk_raw = dk.reshape({N, Hkv * D});
  if (cfg_.qk_norm) {
    dq_raw = new_tensor({N, H * D});
    dk_raw = new_tensor({N, Hkv * D});
    k::rmsnorm_backward(dq.reshape({N, H * D}), c.q_raw, w.q_norm->value, c.q_rstd, dq_raw, w.q_norm->grad);
    k::rmsnorm_backward(dk.reshape({N, Hkv * D}), c.k_raw, w.k_norm->value, c.k_rstd, dk_raw, w.k_norm->grad);
  }
  linear_bwd(kQ, dq_raw, c.x, *w.q, c, dx, true);
  linear_bwd(kK, dk_raw, c.x, *w.k, c, dx, true);
  linear_bwd(kV, dv.reshape({N, Hkv * D}), c.x, *w.v, c, dx, true);
}

void Olmo2::backward(Activations& act, double dscale) {
  QUOPT_CHECK(stage_.embedding && stage_.head,
              "backward() needs the whole model; use backward_stage on a stage");
  backward_stage(act, Tensor(), dscale);
}

Tensor Olmo2::backward_stage(Activations& act, const Tensor& dy_in, double dscale,
                             const std::function<void(std::int64_t)>& on_block_done) {
  const std::int64_t B = act.batch, T = act.seq, N = B * T, C = cfg_.d_model;
  Tensor dy;
  if (stage_.head) {
    QUOPT_CHECK(act.z.defined(), "backward called without a forward");
    Tensor dz;
    if (act.dz.defined()) {  // a training forward computed it (and the head weight's gradient)
      QUOPT_CHECK(dscale == act.head_dscale, "backward with dscale ", dscale, " after a forward with head_dscale ",
                  act.head_dscale, "; they must be the same");
      dz = act.dz;
    } else if (act.logits.defined()) {
      Tensor dlogits = act.logits;  // in place: logits are not needed after this
      k::cross_entropy_backward(act.logits, act.targets.reshape({N}), act.lse, cfg_.z_loss, dscale, dlogits);
      dz = new_tensor({N, C});
      head_bwd(dlogits, act.z, act.head_lin, dz);
    } else {  // the forward kept neither: one more fused pass (its logits GEMM is repeated)
      dz = new_tensor({N, C});
      fused_head(act, dscale, dz);
    }
    dy = new_tensor({N, C});
    k::rmsnorm_backward(dz, act.y, final_norm_->value, act.z_rstd, dy, final_norm_->grad);
    act.logits = Tensor();
    act.dz = Tensor();
  } else {
    QUOPT_CHECK(dy_in.numel() == N * C, "stage output gradient must be [", N, ", ", C, "], got ",
                dy_in.describe());
    dy = dy_in.reshape({N, C});
  }
  for (std::size_t i = blocks_.size(); i-- > 0;) {
    Tensor dx = new_tensor({N, C});
    block_backward(blocks_[i], act.blocks[i], B, T, dy, dx);
    act.blocks[i] = BlockActivations{};  // free as we go
    if (on_block_done) on_block_done(stage_.first_block + static_cast<std::int64_t>(i));
    dy = dx;
  }
  if (!stage_.embedding) return dy;
  k::embedding_backward(act.tokens.reshape({N}), dy, embed_->grad);
  return Tensor();
}

}  // namespace quopt
