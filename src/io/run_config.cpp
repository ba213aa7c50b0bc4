#include "io/run_config.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "core/error.hpp"
#include "optim/optimizer.hpp"

namespace quopt {

namespace {

constexpr std::optional<double> kNone = std::nullopt;  // no bound

Schema build_schema() {
  Schema s;
  // [model]: OLMo2 architecture (arXiv 2501.00656) with the paper's changes (arXiv 2509.23500).
  s.add(string_key("model.name", "olmo2", {}, "label written to run files and reports (quopt choice)"));
  s.add(
      int_key("model.d_model", 64, 1, kNone,
              "residual stream width; default: the olmo2-tiny demo shape (quopt choice), real runs include a "
              "file from inputs/models/"));
  s.add(int_key("model.n_layers", 2, 1, kNone,
                "number of transformer blocks; default: olmo2-tiny (quopt choice)"));
  s.add(int_key("model.n_heads", 4, 1, kNone,
                "attention heads; must divide d_model with an even head_dim (RoPE); default: olmo2-tiny "
                "(quopt choice)"));
  s.add(
      int_key("model.n_kv_heads", 0, 0, kNone,
              "key/value heads (grouped-query attention), must divide n_heads; 0 = n_heads, i.e. multi-head "
              "attention as in OLMo2 7B/13B (arXiv 2501.00656)"));
  s.add(string_key("model.mlp", "relu2", {"relu2", "swiglu"},
                   "MLP type: relu2 = non-gated MLP with ReLU^2 as in the paper (arXiv 2509.23500); swiglu = "
                   "OLMo2's gated MLP (arXiv 2501.00656)"));
  s.add(exclusive_min(float_key(
      "model.mlp_ratio", 4.0, 0.0, kNone,
      "MLP hidden width / d_model, rounded to a multiple of 8; 4 for a non-gated MLP (Vaswani et al. "
      "2017, arXiv 1706.03762); about 8/3 keeps the size with swiglu")));
  s.add(bool_key("model.tie_embeddings", true,
                 "share the input embedding and the output head; tied as in the paper (arXiv 2509.23500)"));
  s.add(bool_key("model.qk_norm", true, "RMSNorm on queries and keys; OLMo2 (arXiv 2501.00656)"));
  s.add(exclusive_min(float_key("model.rope_theta", 500000.0, 0.0, kNone,
                                "RoPE base period; OLMo2 uses 500000 (arXiv 2501.00656)")));
  s.add(int_key(
      "model.vocab_size", 4096, 2, kNone,
      "embedding rows; default: the demo tokenizer size (quopt choice); the paper-size model files use "
      "OLMo2's padded 100352 (allenai/OLMo configs)"));
  s.add(int_key("model.seq_len", 64, 1, kNone,
                "training context length in tokens; default: olmo2-tiny (quopt choice), the paper-size files "
                "use 2048"));
  s.add(float_key(
      "model.z_loss", 0.0, 0.0, kNone,
      "weight of the z-loss (log Z)^2 on the output logits; OLMo2 uses 1e-5 (arXiv 2501.00656), optional "
      "here: 0 disables it"));
  s.add(exclusive_min(float_key("model.init_std", 0.02, 0.0, kNone,
                                "std of the normal init of every weight matrix; OLMo2 (arXiv 2501.00656)")));
  s.add(
      exclusive_min(float_key("model.init_trunc", 3.0, 0.0, kNone,
                              "init truncated at +-init_trunc * init_std; 3 sigma as OLMo2 (allenai/OLMo)")));
  s.add(exclusive_min(
      float_key("model.norm_eps", 1e-6, 0.0, kNone, "RMSNorm epsilon; OLMo2 uses 1e-6 (arXiv 2501.00656)")));

  // [data]: produced by `quopt tokenize`.
  s.add(path_key("data.train", "", "token shard for training (required by train; empty: unset)"));
  s.add(path_key("data.val", "", "token shard for validation (empty: no validation)"));
  s.add(path_key(
      "data.tokenizer", "",
      "tokenizer for decoding and evaluation: a SentencePiece model, or a Hugging Face tokenizer.json "
      "(empty: unset)"));

  // [tokenize]: `quopt tokenize` (SentencePiece).
  s.add(path_list_key("tokenize.inputs", {}, "text files to train the tokenizer on and to tokenize"));
  s.add(path_key("tokenize.out_dir", "", "directory for the tokenizer model and the token shards"));
  s.add(
      path_key("tokenize.tokenizer", "",
               "use this tokenizer (SentencePiece model or Hugging Face tokenizer.json, e.g. of an imported "
               "checkpoint) instead of training one; empty: train (quopt choice)"));
  s.add(int_key(
      "tokenize.vocab_size", 0, 0, kNone,
      "tokenizer vocabulary; 0 = model.vocab_size (quopt choice); may be smaller than model.vocab_size"));
  s.add(float_key("tokenize.val_fraction", 0.02, 0.0, 0.5,
                  "fraction of documents held out for validation (quopt choice)"));
  s.add(string_key("tokenize.model_type", "bpe", {"bpe", "unigram"},
                   "SentencePiece model type; BPE like OLMo2's tokenizer (arXiv 2501.00656)"));
  s.add(int_key("tokenize.max_train_lines", 0, 0, kNone,
                "lines sampled to train the tokenizer; 0 = all (SentencePiece input_sentence_size default)"));

  // [train]
  s.add(int_key("train.steps", 0, 0, kNone,
                "optimizer steps; 0 = Chinchilla-optimal: tokens_per_param * total params / (batch_size * "
                "seq_len), as in the paper (arXiv 2509.23500)"));
  s.add(exclusive_min(float_key(
      "train.tokens_per_param", 20.0, 0.0, kNone,
      "training tokens per parameter when steps = 0; 20 (Chinchilla, arXiv 2203.15556) as in the paper")));
  s.add(int_key("train.batch_size", 8, 1, kNone,
                "sequences per optimizer step (global, all data-parallel ranks); quopt choice for CPU runs"));
  s.add(int_key("train.micro_batch_size", 0, 0, kNone,
                "sequences per forward/backward; must divide batch_size; 0 = batch_size (no accumulation)"));
  s.add(int_key("train.seed", 1, 0, kNone, "seed of the init and of the data order (quopt choice)"));
  s.add(float_key(
      "train.grad_clip", 1.0, 0.0, kNone,
      "clip the global gradient norm to this value, 0 disables; OLMo2 clips at 1.0 (arXiv 2501.00656)"));
  s.add(int_key("train.log_every", 10, 1, kNone,
                "steps between progress lines and metrics records (quopt choice)"));
  s.add(int_key("train.val_every", 50, 0, kNone,
                "steps between validation runs; 0 = only at the end (quopt choice)"));
  s.add(int_key("train.val_points", 0, 0, kNone,
                "validations spread evenly over the run, so runs of different lengths get curves of the same "
                "resolution: val_every = max(1, steps / val_points); 0 = use val_every (quopt choice)"));
  s.add(int_key("train.val_batches", 4, 1, kNone, "batches per validation run (quopt choice)"));
  s.add(string_key("train.device", "cpu", {"cpu", "cuda"},
                   "where the model, gradients and optimizer state live: cpu (host backend) or cuda (one GPU "
                   "per rank; needs the cuda preset; docs/cuda.md)"));
  s.add(string_key("train.precision", "fp32", {"fp32", "bf16"},
                   "GEMM precision on cuda: fp32 (strict) or bf16 (tensor cores, fp32 accumulation and "
                   "master weights, as PyTorch AMP / llm.c; docs/cuda.md); the host always computes fp32"));
  s.add(
      int_key("train.max_nonfinite_skips", 0, 0, kNone,
              "steps whose loss or gradient norm is NaN/inf are never applied; this many are skipped (their "
              "batch is dropped) before the run stops with an error; 0 = stop at the first (quopt choice)"));

  // [schedule]: the paper trains with WSD (arXiv 2509.23500).
  s.add(string_key("schedule.name", "wsd", {"wsd", "cosine", "linear", "constant"},
                   "learning-rate schedule after warmup; WSD (warmup-stable-decay) as in the paper "
                   "(arXiv 2509.23500)"));
  s.add(float_key("schedule.warmup_fraction", 0.05, 0.0, 1.0,
                  "fraction of steps of linear warmup from 0; 5% as in the paper (arXiv 2509.23500)"));
  s.add(float_key(
      "schedule.decay_fraction", 0.2, 0.0, 1.0,
      "wsd only: final fraction of steps decaying linearly to min_lr_ratio * lr; 20% as in the paper "
      "(arXiv 2509.23500)"));
  s.add(float_key("schedule.min_lr_ratio", 0.0, 0.0, 1.0,
                  "final learning rate / peak learning rate; the paper decays to 0 (arXiv 2509.23500)"));

  // [optimizer]
  s.add(
      string_key("optimizer.name", "adamw", {"adamw", "muon", "scion", "shampoo", "soap", "psgd"},
                 "optimizer: the six of the study (arXiv 2509.23500); AdamW (arXiv 1711.05101) as default"));
  s.add(exclusive_min(float_key(
      "optimizer.lr", 1e-3, 0.0, kNone,
      "peak learning rate; the paper tunes it per optimizer and size (arXiv 2509.23500); 1e-3 is a quopt "
      "choice for the small demo models")));
  s.add(float_key("optimizer.weight_decay", 0.1, 0.0, kNone,
                  "decoupled weight decay (multiplied by lr); 0.1 as OLMo2 (arXiv 2501.00656)"));
  s.add(
      list_key("optimizer.decay_roles", {"hidden"}, {"hidden", "embedding", "gain"},
               "parameter roles that get weight decay; OLMo2 exempts embeddings (arXiv 2501.00656) and norm "
               "gains (allenai/OLMo)"));
  s.add(exclusive_max(float_key("optimizer.adamw.beta1", 0.9, 0.0, 1.0,
                                "first-moment decay; 0.9 as OLMo2 (arXiv 2501.00656)")));
  s.add(exclusive_max(float_key("optimizer.adamw.beta2", 0.95, 0.0, 1.0,
                                "second-moment decay; 0.95 as OLMo2 (arXiv 2501.00656)")));
  s.add(exclusive_min(float_key("optimizer.adamw.eps", 1e-8, 0.0, kNone,
                                "denominator epsilon; 1e-8 as OLMo2 (arXiv 2501.00656)")));

  // [optimizer.<name>]: each optimizer's own keys, defaults next to their code in src/optim/
  add_optimizer_keys(s);

  // [quant]: quantization-aware training and post-training quantization
  s.add(string_key("quant.qat", "none", {"none", "quest"},
                   "quantization-aware training: none, or QuEST fake quantization of weights and activations "
                   "of the quantized linear layers (arXiv 2502.05003; the paper's QAT, arXiv 2509.23500)"));
  s.add(bool_key("quant.qat_head", false,
                 "QAT also fake-quantizes the output projection (the tied head; the embedding lookup stays "
                 "exact) with QuEST, as the authors' framework does (gvlassis/ant b083644, "
                 "src/models/transformer.py: the output linear is a QuantizedLinear with the blocks' "
                 "quantizers); false as the paper, which quantizes the blocks' linear layers "
                 "(arXiv 2509.23500)"));
  s.add(int_key("quant.weight_bits", 4, 1, 8, "QAT weight bits; W4A4 as the paper (arXiv 2509.23500)"));
  s.add(int_key("quant.act_bits", 4, 1, 8, "QAT activation bits; W4A4 as the paper (arXiv 2509.23500)"));
  s.add(float_key("quant.trust_factor", 0.0, 0.0, kNone,
                  "QuEST trust-region factor T in |xq - x| <= T * RMS; 0 = alpha_b / (2^b - 1) as QuEST "
                  "(IST-DASLab/QuEST)"));
  s.add(int_key("quant.hadamard_block", 128, 1, kNone,
                "block size of the block-diagonal Hadamard on the input features; 128 as QuEST "
                "(IST-DASLab/QuEST)"));
  s.add(
      list_key("quant.layers", {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_gate", "mlp_down"},
               {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_gate", "mlp_down"},
               "linear layers quantized in every block; embedding and head stay full precision: the paper's "
               "setting, every linear layer inside the blocks (arXiv 2509.23500)"));
  s.add(
      list_key("quant.schemes", {"rtn-w4a4"}, {},
               "PTQ schemes for `quopt ptq` (rtn-w<b>[g<size>][a<b>], gptq-w<b>[g<size>][a<b>]); rtn-w4a4 is "
               "the paper's setting (arXiv 2509.23500)"));
  s.add(int_key("quant.calibration_batches", 4, 1, kNone,
                "GPTQ calibration batches of train.micro_batch_size sequences from the training shard "
                "(quopt choice; GPTQ uses 128 x 2048 tokens at scale, IST-DASLab/gptq)"));
  s.add(int_key(
      "quant.record_rows", 256, 0, kNone,
      "token rows of each layer's input activations and errors stored in the run file (quopt choice)"));

  // [eval]
  s.add(path_list_key("eval.tasks", {},
                      "multiple-choice tasks in quopt's JSONL format (docs/evaluation.md), e.g. converted "
                      "PIQA, HellaSwag, ARC-Easy"));
  s.add(int_key("eval.builtin_examples", 200, 0, kNone,
                "examples of the built-in continuation task made from the validation shard; 0 disables "
                "(quopt choice)"));
  s.add(int_key("eval.val_batches", 16, 1, kNone,
                "validation batches (train.micro_batch_size sequences each) for eval and ptq losses "
                "(quopt choice)"));

  // [track]: quantization robustness measured during training (src/train/robustness.hpp)
  s.add(int_key("track.every", 0, 0, kNone,
                "optimizer steps between robustness measurements (PTQ loss increase, R_L, both MMRs, "
                "kurtosis on a fixed calibration batch), also at step 0 and the last step; 0 = off "
                "(quopt choice: its cost is in docs/benchmarks.md)"));
  s.add(string_key("track.scheme", "rtn-w4a4", {},
                   "PTQ scheme measured during training (a QAT run measures its own QAT quantization "
                   "instead); rtn-w4a4 as the paper's PTQ (arXiv 2509.23500)"));
  s.add(int_key("track.sequences", 8, 1, kNone,
                "sequences of the fixed calibration batch (the first ones of the calibration order `quopt "
                "ptq` and `quopt analyze` use; quopt choice)"));

  // [checkpoint]
  s.add(int_key("checkpoint.every", 0, 0, kNone,
                "steps between checkpoints; a checkpoint is also written after the last step and on a "
                "termination signal (SIGTERM, SIGUSR1); 0 = only those two (quopt choice)"));
  s.add(int_key("checkpoint.keep", 2, 1, kNone,
                "checkpoints kept on disk, oldest removed first (quopt choice)"));

  // [snapshot]
  s.add(
      bool_key("snapshot.enabled", false,
               "keep weight-only snapshots (DIR/snapshots/) at the validation points where the loss reaches "
               "a new minimum, so ptq/eval/analyze can take the model at a step: the paper's common-loss PTQ "
               "(arXiv 2509.23500); `quopt study` turns it on for ptq_protocol = \"common-loss\""));
  s.add(exclusive_max(float_key(
      "snapshot.after_fraction", 0.0, 0.0, 1.0,
      "no snapshot before this fraction of train.steps (quopt choice; e.g. 0.5 halves the disk a large "
      "model's snapshots take, as the common loss is reached late in training)")));

  // [parallel]
  s.add(int_key(
      "parallel.pipeline_stages", 1, 1, kNone,
      "pipeline stages; the MPI ranks form a stages x data-parallel grid, so the world size must be a "
      "multiple of it (quopt choice: no pipeline)"));
  s.add(float_key(
      "parallel.collective_timeout", 0.0, 0.0, kNone,
      "seconds one training step (or a validation, a checkpoint write) may take before quopt decides a rank "
      "is stalled and aborts the job with an error instead of waiting forever; 0 = no limit (quopt choice)"));

  // [output]
  s.add(path_key(
      "output.dir", "runs/default",
      "run directory (run.h5, metrics.jsonl, checkpoints); `--out DIR` overrides it (quopt choice)"));
  return s;
}

// "key = value (set in FILE)" for error messages about a key's current value.
std::string describe(const Config& cfg, std::string_view key) {
  const std::string& src = cfg.source(key);
  const std::string value = config_value_to_toml(cfg.get(key));
  return src == "default" ? cat(key, " = ", value, " (default)")
                          : cat(key, " = ", value, " (set in ", src, ")");
}

[[noreturn]] void constraint(const std::string& what, const std::string& fix) {
  fail("config: ", what, "; ", fix);
}

ScheduleKind schedule_kind(const std::string& name) {
  if (name == "wsd") return ScheduleKind::WSD;
  if (name == "cosine") return ScheduleKind::Cosine;
  if (name == "linear") return ScheduleKind::Linear;
  if (name == "constant") return ScheduleKind::Constant;
  fail("config: schedule.name = '", name, "' is not one of wsd, cosine, linear, constant");
}

}  // namespace

const Schema& quopt_schema() {
  static const Schema schema = build_schema();
  return schema;
}

RunConfig make_run_config(const Config& cfg) {
  RunConfig rc;
  // [model]
  ModelConfig& m = rc.model;
  m.name = cfg.get_string("model.name");
  m.d_model = cfg.get_int("model.d_model");
  m.n_layers = cfg.get_int("model.n_layers");
  m.n_heads = cfg.get_int("model.n_heads");
  m.n_kv_heads = cfg.get_int("model.n_kv_heads");
  if (m.n_kv_heads == 0) m.n_kv_heads = m.n_heads;
  m.mlp = cfg.get_string("model.mlp") == "swiglu" ? MlpKind::SwiGLU : MlpKind::Relu2;
  m.mlp_ratio = cfg.get_float("model.mlp_ratio");
  m.tie_embeddings = cfg.get_bool("model.tie_embeddings");
  m.qk_norm = cfg.get_bool("model.qk_norm");
  m.rope_theta = cfg.get_float("model.rope_theta");
  m.vocab_size = cfg.get_int("model.vocab_size");
  m.seq_len = cfg.get_int("model.seq_len");
  m.z_loss = cfg.get_float("model.z_loss");
  m.init_std = cfg.get_float("model.init_std");
  m.init_trunc = cfg.get_float("model.init_trunc");
  m.norm_eps = cfg.get_float("model.norm_eps");

  if (m.d_model % m.n_heads != 0) {
    constraint(cat(describe(cfg, "model.d_model"), " is not divisible by ", describe(cfg, "model.n_heads")),
               "choose n_heads so that head_dim = d_model / n_heads is a whole even number (e.g. 64)");
  }
  if (m.head_dim() % 2 != 0) {
    constraint(cat("head_dim = d_model / n_heads = ", m.head_dim(), " is odd (",
                   describe(cfg, "model.d_model"), ", ", describe(cfg, "model.n_heads"), ")"),
               "RoPE rotates pairs of dimensions, so choose n_heads giving an even head_dim");
  }
  if (m.mlp_hidden() < 1) {
    constraint(
        cat(describe(cfg, "model.mlp_ratio"), " with ", describe(cfg, "model.d_model"),
            " gives an MLP of width ", m.mlp_hidden(), " (d_model * mlp_ratio rounded to a multiple of 8)"),
        "raise mlp_ratio so that d_model * mlp_ratio >= 0.5 (4 for relu2, about 8/3 for swiglu)");
  }
  if (m.n_kv_heads > m.n_heads || m.n_heads % m.n_kv_heads != 0) {
    constraint(
        cat(describe(cfg, "model.n_heads"), " is not a multiple of ", describe(cfg, "model.n_kv_heads")),
        "n_kv_heads must divide n_heads (0 means n_kv_heads = n_heads)");
  }

  // [data]
  rc.data.train = cfg.get_string("data.train");
  rc.data.val = cfg.get_string("data.val");
  rc.data.tokenizer = cfg.get_string("data.tokenizer");

  // [tokenize]
  TokenizeConfig& tk = rc.tokenize;
  tk.inputs = cfg.get_list("tokenize.inputs");
  tk.out_dir = cfg.get_string("tokenize.out_dir");
  tk.tokenizer = cfg.get_string("tokenize.tokenizer");
  tk.vocab_size = cfg.get_int("tokenize.vocab_size");
  if (tk.vocab_size == 0) tk.vocab_size = m.vocab_size;
  if (tk.vocab_size > m.vocab_size) {
    constraint(
        cat(describe(cfg, "tokenize.vocab_size"), " exceeds ", describe(cfg, "model.vocab_size")),
        "the model's embedding needs a row per token: lower tokenize.vocab_size or raise model.vocab_size");
  }
  tk.val_fraction = cfg.get_float("tokenize.val_fraction");
  tk.model_type = cfg.get_string("tokenize.model_type");
  tk.max_train_lines = cfg.get_int("tokenize.max_train_lines");

  // [train]
  TrainConfig& t = rc.train;
  t.batch_size = cfg.get_int("train.batch_size");
  t.micro_batch_size = cfg.get_int("train.micro_batch_size");
  if (t.micro_batch_size == 0) t.micro_batch_size = t.batch_size;
  if (t.batch_size % t.micro_batch_size != 0) {
    constraint(cat(describe(cfg, "train.batch_size"), " is not a multiple of ",
                   describe(cfg, "train.micro_batch_size")),
               "choose a micro_batch_size that divides batch_size (0 means no accumulation)");
  }
  t.tokens_per_param = cfg.get_float("train.tokens_per_param");
  t.steps = cfg.get_int("train.steps");
  if (t.steps == 0) {
    const double tokens = t.tokens_per_param * static_cast<double>(m.total_params());
    const double per_step = static_cast<double>(t.batch_size) * static_cast<double>(m.seq_len);
    t.steps = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(tokens / per_step)));
  }
  t.seed = static_cast<std::uint64_t>(cfg.get_int("train.seed"));
  t.grad_clip = cfg.get_float("train.grad_clip");
  t.log_every = cfg.get_int("train.log_every");
  t.val_every = cfg.get_int("train.val_every");
  if (const std::int64_t points = cfg.get_int("train.val_points"); points > 0)
    t.val_every = std::max<std::int64_t>(1, t.steps / points);
  t.val_batches = cfg.get_int("train.val_batches");
  t.device = cfg.get_string("train.device");
  t.precision = cfg.get_string("train.precision");
  t.max_nonfinite_skips = cfg.get_int("train.max_nonfinite_skips");

  rc.snapshot.enabled = cfg.get_bool("snapshot.enabled");
  rc.snapshot.after_fraction = cfg.get_float("snapshot.after_fraction");

  // [schedule]
  ScheduleConfig& sc = rc.schedule;
  sc.kind = schedule_kind(cfg.get_string("schedule.name"));
  sc.warmup_fraction = cfg.get_float("schedule.warmup_fraction");
  sc.decay_fraction = cfg.get_float("schedule.decay_fraction");
  sc.min_lr_ratio = cfg.get_float("schedule.min_lr_ratio");
  if (sc.warmup_fraction + sc.decay_fraction > 1.0) {
    constraint(cat(describe(cfg, "schedule.warmup_fraction"), " plus ",
                   describe(cfg, "schedule.decay_fraction"), " exceeds 1"),
               "warmup and decay share the run: make their sum at most 1 (the paper: 0.05 + 0.2)");
  }

  // [optimizer]
  OptimizerConfig& o = rc.optimizer;
  o.name = cfg.get_string("optimizer.name");
  o.lr = cfg.get_float("optimizer.lr");
  o.weight_decay = cfg.get_float("optimizer.weight_decay");
  o.decay_roles = cfg.get_list("optimizer.decay_roles");
  for (std::size_t i = 0; i < o.decay_roles.size(); ++i) {
    if (o.decay_roles[i] != "hidden" && o.decay_roles[i] != "embedding" && o.decay_roles[i] != "gain") {
      constraint(cat(describe(cfg, "optimizer.decay_roles"), " contains '", o.decay_roles[i], "'"),
                 "allowed roles: hidden, embedding, gain");
    }
    if (std::find(o.decay_roles.begin(), o.decay_roles.begin() + static_cast<std::ptrdiff_t>(i),
                  o.decay_roles[i]) != o.decay_roles.begin() + static_cast<std::ptrdiff_t>(i)) {
      constraint(cat(describe(cfg, "optimizer.decay_roles"), " lists '", o.decay_roles[i], "' twice"),
                 "list each role once");
    }
  }
  o.adamw_beta1 = cfg.get_float("optimizer.adamw.beta1");
  o.adamw_beta2 = cfg.get_float("optimizer.adamw.beta2");
  o.adamw_eps = cfg.get_float("optimizer.adamw.eps");

  // [checkpoint], [parallel], [output]
  rc.checkpoint.every = cfg.get_int("checkpoint.every");
  rc.checkpoint.keep = cfg.get_int("checkpoint.keep");
  rc.parallel.pipeline_stages = cfg.get_int("parallel.pipeline_stages");
  rc.parallel.collective_timeout = cfg.get_float("parallel.collective_timeout");
  if (rc.parallel.pipeline_stages > m.n_layers) {
    constraint(cat(describe(cfg, "parallel.pipeline_stages"), " exceeds ", describe(cfg, "model.n_layers")),
               "every pipeline stage needs at least one block: use at most n_layers stages");
  }
  rc.quant.qat = cfg.get_string("quant.qat");
  rc.quant.qat_head = cfg.get_bool("quant.qat_head");
  if (rc.quant.qat_head && rc.quant.qat == "none")
    constraint(cat(describe(cfg, "quant.qat_head"), " quantizes the head during QAT, but ",
                   describe(cfg, "quant.qat")),
               "set quant.qat = \"quest\" or quant.qat_head = false");
  rc.quant.weight_bits = cfg.get_int("quant.weight_bits");
  rc.quant.act_bits = cfg.get_int("quant.act_bits");
  rc.quant.trust_factor = cfg.get_float("quant.trust_factor");
  rc.quant.hadamard_block = cfg.get_int("quant.hadamard_block");
  rc.quant.layers = cfg.get_list("quant.layers");
  rc.quant.schemes = cfg.get_list("quant.schemes");
  rc.quant.calibration_batches = cfg.get_int("quant.calibration_batches");
  rc.quant.record_rows = cfg.get_int("quant.record_rows");
  if (rc.quant.qat == "quest" && m.d_model % rc.quant.hadamard_block != 0)
    constraint(cat(describe(cfg, "quant.hadamard_block"), " does not divide model.d_model = ", m.d_model),
               "choose a power of two that divides every linear layer's input width");
  rc.track.every = cfg.get_int("track.every");
  rc.track.scheme = cfg.get_string("track.scheme");
  rc.track.sequences = cfg.get_int("track.sequences");
  rc.eval.tasks = cfg.get_list("eval.tasks");
  rc.eval.builtin_examples = cfg.get_int("eval.builtin_examples");
  rc.eval.val_batches = cfg.get_int("eval.val_batches");
  rc.out_dir = cfg.get_string("output.dir");
  if (rc.out_dir.empty()) constraint("output.dir is empty", "set [output] dir or pass --out DIR");
  return rc;
}

std::string quopt_config_reference() {
  std::string doc =
      "# quopt configuration reference\n"
      "\n"
      "<!-- Generated from quopt_schema() (src/io/run_config.cpp); do not edit by hand. Regenerate with\n"
      "     QUOPT_UPDATE_DOCS=1 build/cpu/tests/test_run_config --gtest_filter='*Docs*' -->\n"
      "\n"
      "Every quopt command reads one TOML file: `quopt <command> CONFIG.toml [--set key=value]... [--out "
      "DIR]`.\n"
      "\n"
      "## Composing files\n"
      "\n"
      "- A file may start with `include = [\"../models/olmo2-tiny.toml\", \"../optimizers/adamw.toml\"]`. "
      "The\n"
      "  included files are loaded first, in order, each one overriding the ones before it; the including "
      "file\n"
      "  overrides all its includes. Includes nest; a cycle is an error. Include paths are relative to the\n"
      "  including file.\n"
      "- `--set key=value` (repeatable) is applied after all files, in order. The value is parsed by the "
      "key's\n"
      "  type: integers (`100`, `1_000`), floats (`3e-4`, `0.1`; integers are accepted), booleans (`true`,\n"
      "  `false`), strings (raw `wsd` or quoted `\"wsd\"`), lists (comma-separated `hidden,gain` or a TOML "
      "array\n"
      "  `[\"hidden\", \"gain\"]`). `--out DIR` is `--set output.dir=DIR`.\n"
      "- Paths (type `path`) are resolved to absolute paths relative to the directory of the file that set "
      "them;\n"
      "  for `--set` and defaults, relative to the current directory. An empty path means unset.\n"
      "- Keys are written in their TOML table: `[optimizer.adamw]` then `beta2 = 0.98`, or as dotted keys\n"
      "  (`optimizer.adamw.beta2 = 0.98`).\n"
      "- Unknown keys, wrong types, values outside the allowed range or list, TOML syntax errors and "
      "missing\n"
      "  includes are errors naming the file, the line and the key (with the nearest valid key for a typo);\n"
      "  nothing runs with a rejected config.\n"
      "- Every run stores its fully resolved config (every key below, defaults included) as TOML in "
      "`run.h5`;\n"
      "  that text is itself a valid config file.\n"
      "\n"
      "Cross-key rules checked before anything runs: `d_model % n_heads == 0` with an even head_dim (RoPE);\n"
      "`n_heads % n_kv_heads == 0`; `batch_size % micro_batch_size == 0`; `warmup_fraction + decay_fraction "
      "<= 1`;\n"
      "`decay_roles` entries are distinct roles; `tokenize.vocab_size <= model.vocab_size`;\n"
      "`pipeline_stages <= n_layers`; `d_model * mlp_ratio` gives an MLP at least 1 wide. Single-key ranges "
      "(e.g. `lr > 0`, Adam betas in [0, 1)) are in the\n"
      "`allowed` column below and are checked as each file is read.\n"
      "\n"
      "Keys with 0 meaning \"derived\": `model.n_kv_heads` (= n_heads), `train.micro_batch_size` (= "
      "batch_size),\n"
      "`train.steps` (= ceil(tokens_per_param * total params / (batch_size * seq_len)), the paper's\n"
      "Chinchilla-optimal budget), `tokenize.vocab_size` (= model.vocab_size).\n"
      "\n"
      "## Keys\n"
      "\n";
  return doc + quopt_schema().markdown_reference();
}

}  // namespace quopt
