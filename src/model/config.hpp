#pragma once
// OLMo2 model hyperparameters (values come from [model] in a config; defaults and their sources
// are in io/run_config.cpp's schema).
#include <cstdint>
#include <string>

namespace quopt {

enum class MlpKind { Relu2, SwiGLU };

struct ModelConfig {
  std::string name = "olmo2";
  std::int64_t d_model = 64;
  std::int64_t n_layers = 2;
  std::int64_t n_heads = 4;
  std::int64_t n_kv_heads = 4;
  MlpKind mlp = MlpKind::Relu2;
  double mlp_ratio = 4.0;
  bool tie_embeddings = true;
  bool qk_norm = true;
  double rope_theta = 500000.0;
  std::int64_t vocab_size = 256;
  std::int64_t seq_len = 64;
  double z_loss = 0.0;
  double init_std = 0.02;
  double init_trunc = 3.0;  // truncation in units of init_std
  double norm_eps = 1e-6;

  std::int64_t head_dim() const { return d_model / n_heads; }
  // Hidden width of the MLP: d_model * mlp_ratio rounded to a multiple of 8.
  std::int64_t mlp_hidden() const;
  std::int64_t embedding_params() const;      // token embedding (+ untied head)
  std::int64_t non_embedding_params() const;  // blocks + final norm
  std::int64_t total_params() const { return embedding_params() + non_embedding_params(); }
  // Training FLOPs per token: 6 * (non-embedding params + head matmul) + attention (Kaplan/Chinchilla
  // accounting: 6N + 12 L T d for the QK^T and AV products, forward + backward).
  double train_flops_per_token() const;
};

}  // namespace quopt
