#include "model/config.hpp"

namespace quopt {

std::int64_t ModelConfig::mlp_hidden() const {
  const auto h = static_cast<std::int64_t>(static_cast<double>(d_model) * mlp_ratio + 0.5);
  return (h + 7) / 8 * 8;
}

std::int64_t ModelConfig::embedding_params() const {
  const std::int64_t emb = vocab_size * d_model;
  return tie_embeddings ? emb : 2 * emb;
}

std::int64_t ModelConfig::non_embedding_params() const {
  const std::int64_t hd = head_dim();
  const std::int64_t q = d_model * n_heads * hd, kv = 2 * d_model * n_kv_heads * hd,
                     o = n_heads * hd * d_model;
  const std::int64_t qk_norm_params = qk_norm ? (n_heads * hd + n_kv_heads * hd) : 0;
  const std::int64_t mlp_in = (mlp == MlpKind::SwiGLU ? 2 : 1) * d_model * mlp_hidden();
  const std::int64_t mlp_out = mlp_hidden() * d_model;
  const std::int64_t norms = 2 * d_model;  // post-attention and post-MLP RMSNorm gains
  const std::int64_t block = q + kv + o + qk_norm_params + mlp_in + mlp_out + norms;
  return n_layers * block + d_model;  // + final norm
}

double ModelConfig::train_flops_per_token() const {
  const double n = static_cast<double>(non_embedding_params() + vocab_size * d_model);  // head matmul counts
  return 6.0 * n + 12.0 * static_cast<double>(n_layers * seq_len * d_model);
}

}  // namespace quopt
