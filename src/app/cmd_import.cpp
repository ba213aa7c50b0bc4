// quopt import HF_DIR --out DIR: an OLMo2 checkpoint in Hugging Face form (config.json and
// model.safetensors, or shards listed by model.safetensors.index.json; F32, BF16 or F16 tensors,
// read as f32) as a quopt run directory (docs/interop.md): DIR/run.h5 with /weights and the resolved
// config, DIR/config.toml (the same config, to pass to quopt eval / ptq / analyze) and the tokenizer.
// Anything quopt's OLMo2 cannot compute the same way is an error that names the field or tensor.
#include <mpi.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "io/config.hpp"
#include "io/hf_olmo2.hpp"
#include "io/hf_tokenizer_files.hpp"
#include "io/run_config.hpp"
#include "io/run_file.hpp"
#include "io/safetensors_checkpoint.hpp"
#include "io/tokenizer.hpp"
#include "model/olmo2.hpp"

namespace quopt::app {

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The quopt config of an imported model: defaults (io/run_config's schema) with the checkpoint's
// [model], its tokenizer and the output directory.
Config imported_config(const ModelConfig& m, const std::string& tokenizer, const std::string& out_dir) {
  Config c = Config::defaults(quopt_schema());
  const auto num = [](double v) { return config_value_to_toml(ConfigValue(v)); };
  c.set("model.name", config_value_to_toml(ConfigValue(m.name)));
  c.set("model.d_model", std::to_string(m.d_model));
  c.set("model.n_layers", std::to_string(m.n_layers));
  c.set("model.n_heads", std::to_string(m.n_heads));
  c.set("model.n_kv_heads", std::to_string(m.n_kv_heads));
  c.set("model.mlp", m.mlp == MlpKind::SwiGLU ? "swiglu" : "relu2");
  c.set("model.mlp_ratio", num(m.mlp_ratio));
  c.set("model.tie_embeddings", m.tie_embeddings ? "true" : "false");
  c.set("model.qk_norm", "true");
  c.set("model.rope_theta", num(m.rope_theta));
  c.set("model.vocab_size", std::to_string(m.vocab_size));
  c.set("model.seq_len", std::to_string(m.seq_len));
  c.set("model.z_loss", "0.0");
  c.set("model.init_std", num(m.init_std));
  c.set("model.norm_eps", num(m.norm_eps));
  if (!tokenizer.empty()) c.set("data.tokenizer", config_value_to_toml(ConfigValue(tokenizer)));
  c.set("output.dir", config_value_to_toml(ConfigValue(out_dir)));
  return c;
}

}  // namespace

int cmd_import(const std::string& hf_dir, const std::string& out) {
  namespace fs = std::filesystem;
  const fs::path in(hf_dir);
  QUOPT_CHECK(fs::is_directory(in), hf_dir,
              " is not a directory: point quopt import at a Hugging Face model "
              "directory (config.json and model.safetensors)");
  const std::string out_dir = fs::absolute(out).lexically_normal().string();
  for (const char* f : {"run.h5", "config.toml"})
    QUOPT_CHECK(!fs::exists(fs::path(out_dir) / f), out_dir, " already holds ", f,
                "; import into a new directory (nothing was written)");

  // 1. config.json -> ModelConfig; every check before anything is written.
  const std::string cfg_path = (in / "config.json").string();
  QUOPT_CHECK(fs::exists(cfg_path), hf_dir, " has no config.json");
  Json hf_cfg;
  try {
    hf_cfg = parse_json(read_text_file(cfg_path, "config.json"));
  } catch (const Error& e) {
    fail(cfg_path, ": ", e.what());
  }
  std::vector<std::string> ignored;
  ModelConfig mc = model_config_from_hf(hf_cfg, cfg_path, &ignored);
  mc.name = fs::absolute(in).lexically_normal().filename().string();
  if (mc.name.empty()) mc.name = "olmo2";

  // 2. weights: every tensor the model needs, nothing it cannot use.
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(hf_dir);
  if (mc.mlp == MlpKind::Relu2) {  // relu is quopt's ReLU^2 only in the form gate == up
    for (std::int64_t l = 0; l < mc.n_layers; ++l) {
      const std::string b = "model.layers." + std::to_string(l) + ".mlp.";
      for (const char* t : {"gate_proj.weight", "up_proj.weight"})
        QUOPT_CHECK(ckpt.contains(b + t), ckpt.origin(), " has no tensor ", b + t);
      if (!same_bits(ckpt.read_f32(b + "gate_proj.weight"), ckpt.read_f32(b + "up_proj.weight")))
        fail(cfg_path, ": hidden_act \"relu\" with ", b, "gate_proj != ", b,
             "up_proj is a gated ReLU MLP, which quopt cannot represent (it has SwiGLU, and ReLU^2 = "
             "relu(gate x) * (up x) with gate = up)");
    }
  }
  const std::vector<HfTensorMap> maps = hf_olmo2_tensors(mc);
  std::set<std::string> used;
  for (const auto& t : maps) used.insert(t.hf.begin(), t.hf.end());
  if (mc.tie_embeddings) used.insert("lm_head.weight");  // transformers ties it to the embedding: ignored
  for (const auto& n : ckpt.names())
    if (!used.count(n) && !hf_tensor_is_buffer(n))
      fail(ckpt.origin(), " holds \"", n, "\", which quopt's OLMo2 has no place for",
           n.find("bias") != std::string::npos ? " (quopt's OLMo2 has no biases)" : "",
           "; is this an Olmo2ForCausalLM checkpoint of the config.json beside it?");
  Olmo2 model(mc, DType::F32);
  for (const auto& t : maps) {
    Parameter& p = model.params().get(t.quopt);
    QUOPT_CHECK(ckpt.contains(t.hf.back()), ckpt.origin(), " has no tensor \"", t.hf.back(), "\" (quopt's ",
                t.quopt, ")");
    const Tensor w = ckpt.read_f32(t.hf.back());
    QUOPT_CHECK(w.shape() == p.value.shape(), ckpt.origin(), ": \"", t.hf.back(), "\" has shape ",
                shape_str(w.shape()), ", but config.json implies ", shape_str(p.value.shape()));
    p.value.copy_from(w);
  }

  // 3. the run directory: tokenizer, config.toml, run.h5 (last: its presence marks a complete import).
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  QUOPT_CHECK(!ec, "cannot create ", out_dir, ": ", ec.message());
  std::string tokenizer;
  if (rank == 0) {
    try {
      tokenizer = copy_hf_tokenizer_files(hf_dir, out_dir);
    } catch (const Error& e) {  // the weights are still usable: token shards made elsewhere evaluate
      log_warn("the checkpoint's tokenizer cannot be used by quopt: ", e.what(),
               ". Imported without data.tokenizer: validation loss on token shards works; tasks need a ",
               "tokenizer quopt reads (docs/interop.md)");
    }
  }
  unsigned long len = tokenizer.size();  // rank 0's path to every rank
  MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG, 0, MPI_COMM_WORLD);
  tokenizer.resize(len);
  MPI_Bcast(tokenizer.data(), static_cast<int>(len), MPI_CHAR, 0, MPI_COMM_WORLD);
  const Config cfg = imported_config(mc, tokenizer, out_dir);
  (void)make_run_config(cfg);  // the config quopt eval / ptq / analyze will load: valid now
  const std::string toml = cfg.to_toml();
  if (rank == 0) {
    const std::string path = out_dir + "/config.toml", tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << "# quopt config of the model imported from " << fs::absolute(in).string() << "\n" << toml;
      f.close();
      QUOPT_CHECK(static_cast<bool>(f), "cannot write ", tmp);
    }
    fs::rename(tmp, path, ec);
    QUOPT_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
  }
  RunInfo info;
  info.config_toml = toml;
  info.model = mc;
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  info.world_size = world;
  write_run_file(out_dir + "/run.h5", MPI_COMM_WORLD, info, model.params(), RunMetrics{});
  log_info("imported ", cfg_path, " (", mc.n_layers, " layers, d_model ", mc.d_model, ", ", mc.n_heads, "/",
           mc.n_kv_heads, " heads, ", mc.mlp == MlpKind::SwiGLU ? "SwiGLU" : "ReLU^2",
           mc.tie_embeddings ? ", tied head" : ", untied head", ", ", mc.total_params(), " parameters) into ",
           out_dir, "/run.h5 and config.toml",
           tokenizer.empty() ? "; no tokenizer in the checkpoint (set data.tokenizer to evaluate tasks)"
                             : "; tokenizer " + tokenizer);
  if (!ignored.empty()) {
    std::string s;
    for (const auto& k : ignored) s += (s.empty() ? "" : ", ") + k;
    log_info("config.json fields that do not change the computation: ", s);
  }
  return 0;
}

}  // namespace quopt::app
