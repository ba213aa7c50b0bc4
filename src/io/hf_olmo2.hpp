#pragma once
// quopt's OLMo2 in Hugging Face transformers' terms (Olmo2Config, Olmo2ForCausalLM in
// transformers/models/olmo2): the config.json fields and the tensor names of a checkpoint.
//
// transformers' Olmo2 block is the same computation as quopt's (post-norm "reordered" blocks, QK-norm
// over the whole q / k projections, rotate-half RoPE, no biases). Its MLP is always gated,
// down(act(gate x) * up x). quopt's SwiGLU is act = silu with gate = mlp_gate, up = mlp_up. quopt's
// ReLU^2 MLP, down(relu(up x)^2), is written as act = relu with gate = up = mlp_up: relu(z) * z =
// relu(z)^2 for every z (both are z^2 for z > 0 and 0 otherwise), and the two projections compute the
// same z, so the exported model is exact; importing recognises that form (gate == up bitwise).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/json.hpp"
#include "model/config.hpp"

namespace quopt {

// Token ids written to config.json (absent: left unset).
struct HfTokenIds {
  std::optional<std::int64_t> bos, eos, pad;
};

// config.json of a quopt model, every field the computation depends on set explicitly (transformers'
// defaults differ from quopt's, e.g. rms_norm_eps 1e-5 vs 1e-6). Throws quopt::Error for a model that
// Olmo2ForCausalLM cannot express (model.qk_norm = false).
Json hf_olmo2_config(const ModelConfig& m, const HfTokenIds& ids);

// The ModelConfig of an Olmo2 config.json (`origin` names the file in errors). Throws quopt::Error
// naming the field when the model is not an Olmo2 or uses something quopt does not implement
// (biases, RoPE scaling, a head_dim other than hidden_size / num_attention_heads, an activation other
// than silu or relu, an intermediate_size quopt cannot express). The MLP kind for hidden_act = relu is
// decided from the weights (see hf_olmo2_tensors); here it is set to Relu2 for relu, SwiGLU for silu.
// `ignored` receives the fields that were read but do not change the computation quopt does.
ModelConfig model_config_from_hf(const Json& config, const std::string& origin,
                                 std::vector<std::string>* ignored = nullptr);

// One quopt parameter and the checkpoint tensors that hold it: one name, except a ReLU^2 mlp_up, which
// is both mlp.gate_proj and mlp.up_proj.
struct HfTensorMap {
  std::string quopt;            // "block.03/attn_q"
  std::vector<std::string> hf;  // {"model.layers.3.self_attn.q_proj.weight"}
};
// Every parameter of the whole model, in quopt's parameter order. A tied head has no lm_head.weight
// (transformers' save_pretrained drops tied weights from safetensors files).
std::vector<HfTensorMap> hf_olmo2_tensors(const ModelConfig& m);

// True for checkpoint tensors transformers may store that carry no weights (rotary inv_freq buffers of
// older checkpoints); the importer skips them.
bool hf_tensor_is_buffer(const std::string& name);

}  // namespace quopt
