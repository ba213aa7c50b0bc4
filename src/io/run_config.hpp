#pragma once
// The typed view of a resolved quopt config: one struct per TOML section. io/run_config.cpp holds the
// schema (every key, its type, default with source, allowed values) and builds these structs from
// a Config, checking cross-key constraints (e.g. n_heads divides d_model).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "model/config.hpp"

namespace quopt {

struct DataConfig {
  std::string train;      // token shard for training (absolute path after loading)
  std::string val;        // token shard for validation
  std::string tokenizer;  // SentencePiece model (optional for training)
};

struct TokenizeConfig {
  std::vector<std::string> inputs;  // text files
  std::string out_dir;
  std::string tokenizer;        // existing tokenizer to use instead of training one (empty: train)
  std::int64_t vocab_size = 0;  // 0: use model.vocab_size
  double val_fraction = 0.02;
  std::string model_type = "bpe";
  std::int64_t max_train_lines = 0;  // 0: all lines
};

struct TrainConfig {
  std::int64_t steps = 100;        // resolved by make_run_config (train.steps = 0: Chinchilla-optimal count)
  double tokens_per_param = 20.0;  // Chinchilla (arXiv 2203.15556); used when train.steps = 0
  std::int64_t batch_size = 8;     // sequences per global batch
  std::int64_t micro_batch_size = 8;  // sequences per forward/backward
  std::uint64_t seed = 1;
  double grad_clip = 1.0;  // 0 disables
  std::int64_t log_every = 10;
  std::int64_t val_every = 50;
  std::int64_t val_batches = 4;
  std::string device = "cpu";            // cpu | cuda (one GPU per rank)
  std::string precision = "fp32";        // fp32 | bf16 (GEMMs in bf16 tensor-core compute on the GPU)
  std::int64_t max_nonfinite_skips = 0;  // steps with a non-finite loss/gradient skipped before stopping
};

enum class ScheduleKind { WSD, Cosine, Linear, Constant };
struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::WSD;
  double warmup_fraction = 0.05;
  double decay_fraction = 0.2;
  double min_lr_ratio = 0.0;
};

struct OptimizerConfig {
  std::string name = "adamw";
  double lr = 1e-3;
  double weight_decay = 0.1;
  std::vector<std::string> decay_roles;  // parameter roles that get weight decay: hidden, embedding, gain
  // [optimizer.adamw]
  double adamw_beta1 = 0.9, adamw_beta2 = 0.95, adamw_eps = 1e-8;
};

struct QuantConfig {
  std::string qat = "none";  // none | quest
  bool qat_head = false;     // QAT quantizes the output projection too (gvlassis/ant); false: the paper
  std::int64_t weight_bits = 4, act_bits = 4;
  double trust_factor = 0.0;  // 0: QuEST's alpha_b / (2^b - 1)
  std::int64_t hadamard_block = 128;
  std::vector<std::string> layers;   // linear layer names quantized in every block
  std::vector<std::string> schemes;  // PTQ schemes
  std::int64_t calibration_batches = 4;
  std::int64_t record_rows = 256;
};

struct EvalConfig {
  std::vector<std::string> tasks;
  std::int64_t builtin_examples = 200;
  std::int64_t val_batches = 16;
};

// [track]: quantization robustness measured during training (train/robustness.hpp).
struct TrackConfig {
  std::int64_t every = 0;           // steps between measurements; 0 = off
  std::string scheme = "rtn-w4a4";  // PTQ scheme measured (a QAT run measures its QAT quantization)
  std::int64_t sequences = 8;       // sequences of the fixed calibration batch
};

struct CheckpointConfig {
  std::int64_t every =
      0;  // steps between checkpoints (and one at the end); 0: only at the end and on signals
  std::int64_t keep = 2;
};

// [snapshot]: weight-only snapshots at validation points (io/snapshot.hpp), for PTQ at a common loss.
struct SnapshotConfig {
  bool enabled = false;
  double after_fraction = 0.0;  // no snapshot before this fraction of train.steps
};

struct ParallelConfig {
  std::int64_t pipeline_stages = 1;
  double collective_timeout =
      0.0;  // seconds a training step (or checkpoint, validation) may take; 0: no limit
};

struct RunConfig {
  ModelConfig model;
  DataConfig data;
  TokenizeConfig tokenize;
  TrainConfig train;
  ScheduleConfig schedule;
  OptimizerConfig optimizer;
  CheckpointConfig checkpoint;
  SnapshotConfig snapshot;
  ParallelConfig parallel;
  QuantConfig quant;
  TrackConfig track;
  EvalConfig eval;
  std::string out_dir;  // [output] dir
  // The resolved config itself, for keys read where they are used (optimizer.<name>.*); set by the
  // caller of make_run_config.
  std::shared_ptr<const Config> raw;
};

// The schema of every key quopt accepts.
const Schema& quopt_schema();
// Builds the typed config; throws quopt::Error naming the key for cross-key violations.
// Resolves the "0 means derived" keys: model.n_kv_heads (0: n_heads), train.micro_batch_size (0: batch_size),
// train.steps (0: tokens_per_param * total params / tokens per step),
// tokenize.vocab_size (0: model.vocab_size).
RunConfig make_run_config(const Config& cfg);
// The configuration reference (docs/config.md), generated from quopt_schema().
std::string quopt_config_reference();

}  // namespace quopt
