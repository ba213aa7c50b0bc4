#include <cstdio>

#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "core/log.hpp"

namespace quopt::app {

int cmd_info(const CommonArgs& a) {
  const LoadedConfig lc = load_config(a);
  const ModelConfig& m = lc.run.model;
  log_info("model: ", m.name);
  log_info("shape: d_model ", m.d_model, ", n_layers ", m.n_layers, ", n_heads ", m.n_heads, ", n_kv_heads ",
           m.n_kv_heads, ", head_dim ", m.head_dim(), ", mlp ", m.mlp == MlpKind::Relu2 ? "relu2" : "swiglu",
           " (", m.mlp_hidden(), "), vocab ", m.vocab_size, ", seq_len ", m.seq_len,
           m.tie_embeddings ? ", tied embeddings" : ", untied embeddings");
  log_info("parameters: ", m.total_params());
  log_info("non-embedding parameters: ", m.non_embedding_params());
  log_info("embedding parameters: ", m.embedding_params());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4e", m.train_flops_per_token());
  log_info("training FLOPs per token: ", buf);
  std::snprintf(buf, sizeof buf, "%.4e", 20.0 * static_cast<double>(m.total_params()));
  log_info("Chinchilla tokens (20 per parameter): ", buf);
  return 0;
}

}  // namespace quopt::app
