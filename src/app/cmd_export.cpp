// quopt export CONFIG --run DIR --to HF_DIR [--quant SCHEME]: the model of DIR/run.h5 as a Hugging Face
// directory that transformers loads as Olmo2ForCausalLM with no custom code (docs/interop.md):
// config.json (io/hf_olmo2), model.safetensors (io/safetensors, f32) and the tokenizer
// (io/hf_tokenizer_files). With --quant, the weights are the fake-quantized ones of that PTQ scheme;
// activation quantization cannot be expressed in a plain checkpoint and is left out (said on stdout
// and in the file's metadata). A QAT run exports its latent weights (its QuEST quantizer cannot be
// expressed either; said likewise) and refuses --quant (PTQ on top of QAT, app/trained_arithmetic).
#include <mpi.h>

#include <filesystem>

#include "app/commands.hpp"
#include "app/config_loader.hpp"
#include "app/model_eval.hpp"
#include "app/trained_arithmetic.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "io/hf_olmo2.hpp"
#include "io/hf_tokenizer_files.hpp"
#include "io/safetensors.hpp"
#include "quant/ptq.hpp"
#include "quopt/version.hpp"

namespace quopt::app {

int cmd_export(const CommonArgs& a, const std::string& run_dir, const std::string& to,
               const std::string& scheme) {
  namespace fs = std::filesystem;
  const LoadedConfig lc = load_config(a);
  const RunConfig& cfg = lc.run;
  for (const char* f : {"config.json", "model.safetensors", "model.safetensors.index.json"})
    QUOPT_CHECK(!fs::exists(fs::path(to) / f), to, " already holds ", f,
                "; export into a new directory (nothing was written)");
  std::unique_ptr<Tokenizer> tok;
  if (!cfg.data.tokenizer.empty()) tok = std::make_unique<Tokenizer>(Tokenizer::load(cfg.data.tokenizer));
  HfTokenIds ids;
  if (tok && tok->eos_id() >= 0) ids.eos = ids.pad = tok->eos_id();
  if (tok && tok->bos_id() >= 0) ids.bos = tok->bos_id();
  const Json config = hf_olmo2_config(cfg.model, ids);  // rejects what Olmo2 cannot express, before work

  const TrainedArithmetic trained = read_trained_arithmetic(run_dir + "/run.h5", cfg);
  if (!scheme.empty()) reject_ptq_of_qat(trained, run_dir + "/run.h5", "quopt export --quant");
  auto model = load_trained_model(cfg, run_dir + "/run.h5");
  std::string quant_note = "none";
  if (trained.qat()) {  // the checkpoint holds the latent weights; QuEST's arithmetic is not expressible
    quant_note = "QAT run (" + trained.name() + "): latent weights; its QAT quantizer is not included";
    log_warn("note: ", run_dir, " is a QAT run (", trained.name(), "); a plain checkpoint cannot express its ",
             "quantizer (Hadamard rotation and QuEST grid on weights and activations), so the export holds the ",
             "latent weights and transformers computes them exactly: not the model as trained, whose loss is ",
             "`quopt eval`'s");
  }
  if (!scheme.empty()) {
    const QuantScheme s = parse_quant_scheme(scheme);
    quantize_model(*model, s, cfg.quant.layers,
                   s.method == QuantMethod::Gptq ? calibration_batches(cfg) : std::vector<Tensor>{});
    quant_note = s.name + ": fake-quantized weights";
    if (s.act_bits > 0) {
      quant_note += "; activation quantization not included";
      log_info("note: ", s.name, " quantizes activations to ", s.act_bits,
               " bits, which a plain checkpoint cannot express; the export holds the quantized weights only "
               "(W",
               s.weight_bits, "A16 in effect)");
    }
  }

  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {  // one writer; every rank holds the whole model
    std::error_code ec;
    fs::create_directories(to, ec);
    QUOPT_CHECK(!ec, "cannot create ", to, ": ", ec.message());
    SafetensorsWriter w;
    for (const HfTensorMap& t : hf_olmo2_tensors(cfg.model))
      for (const auto& name : t.hf) w.add(name, model->params().get(t.quopt).value);
    w.set_metadata("format", "pt");  // transformers requires it (modeling_utils: "pt", "tf", "flax", "mlx")
    w.set_metadata("quopt_version", std::string(kVersion) + " (" + kGitRevision + ")");
    w.set_metadata("quopt_run", fs::absolute(run_dir).string());
    w.set_metadata("quopt_quant", quant_note);
    w.write((fs::path(to) / "model.safetensors").string());
    if (tok) write_hf_tokenizer_files(*tok, to, cfg.model.seq_len);
    write_json_file((fs::path(to) / "config.json").string(), config);
    log_info("exported ", cfg.model.name, " (", cfg.model.total_params(), " parameters, ",
             cfg.model.mlp == MlpKind::SwiGLU ? "SwiGLU" : "ReLU^2 as relu(gate) * up with gate = up",
             scheme.empty() ? "" : ", " + quant_note, ") to ", to,
             tok ? "" : " without a tokenizer (data.tokenizer is not set)");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return 0;
}

}  // namespace quopt::app
