#include "io/hf_olmo2.hpp"

#include <cmath>
#include <map>
#include <set>

#include "core/error.hpp"
#include "model/olmo2.hpp"

namespace quopt {

Json hf_olmo2_config(const ModelConfig& m, const HfTokenIds& ids) {
  if (!m.qk_norm)
    fail("model.qk_norm = false cannot be exported: transformers' Olmo2 always applies q_norm and k_norm ",
         "(an RMSNorm normalises even with unit gains)");
  Json j = {
      {"architectures", {"Olmo2ForCausalLM"}},
      {"model_type", "olmo2"},
      {"vocab_size", m.vocab_size},
      {"hidden_size", m.d_model},
      {"intermediate_size", m.mlp_hidden()},
      {"num_hidden_layers", m.n_layers},
      {"num_attention_heads", m.n_heads},
      {"num_key_value_heads", m.n_kv_heads > 0 ? m.n_kv_heads : m.n_heads},
      // ReLU^2 as relu(gate x) * (up x) with gate = up (header comment).
      {"hidden_act", m.mlp == MlpKind::SwiGLU ? "silu" : "relu"},
      {"max_position_embeddings", m.seq_len},
      {"initializer_range", m.init_std},
      {"rms_norm_eps", m.norm_eps},
      // transformers 4.x reads rope_theta / rope_scaling, 5.x rope_parameters; both say the same.
      {"rope_theta", m.rope_theta},
      {"rope_scaling", nullptr},
      {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", m.rope_theta}}},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"tie_word_embeddings", m.tie_embeddings},
      {"use_cache", true},
      {"torch_dtype", "float32"},
      {"bos_token_id", ids.bos ? Json(*ids.bos) : Json(nullptr)},
      {"eos_token_id", ids.eos ? Json(*ids.eos) : Json(nullptr)},
      {"pad_token_id", ids.pad ? Json(*ids.pad) : Json(nullptr)},
  };
  return j;
}

namespace {

class Fields {
 public:
  Fields(const Json& j, std::string origin) : j_(j), origin_(std::move(origin)) {}
  const Json* get(const std::string& k) {
    used_.insert(k);
    const auto it = j_.find(k);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  std::int64_t positive_int(const std::string& k, std::optional<std::int64_t> def = std::nullopt) {
    const Json* v = get(k);
    if (!v) {
      if (def) return *def;
      fail(origin_, " has no \"", k, "\" (an Olmo2 config.json sets it)");
    }
    const std::int64_t x = json_int64(*v, cat(origin_, ": \"", k, "\""));
    if (x <= 0) fail(origin_, ": \"", k, "\" = ", x, " must be positive");
    return x;
  }
  double positive_float(const std::string& k, double def) {
    const Json* v = get(k);
    if (!v) return def;
    if (!v->is_number()) fail(origin_, ": \"", k, "\" is ", json_a_type(*v), ", expected a number");
    const double x = v->get<double>();
    if (!(x > 0.0) || !std::isfinite(x)) fail(origin_, ": \"", k, "\" = ", v->dump(), " must be positive");
    return x;
  }
  // A boolean field that must have the value quopt implements.
  bool boolean(const std::string& k, bool def) {
    const Json* v = get(k);
    if (!v) return def;
    if (!v->is_boolean()) fail(origin_, ": \"", k, "\" is ", json_a_type(*v), ", expected true or false");
    return v->get<bool>();
  }
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (const auto& [k, unused] : j_.items())
      if (!used_.count(k)) out.push_back(k);
    return out;
  }
  const std::string& origin() const { return origin_; }

 private:
  const Json& j_;
  std::string origin_;
  std::set<std::string> used_;
};

}  // namespace

ModelConfig model_config_from_hf(const Json& config, const std::string& origin,
                                 std::vector<std::string>* ignored) {
  if (!config.is_object()) fail(origin, " is ", json_a_type(config), " in JSON, expected an object");
  Fields f(config, origin);
  const Json* type = f.get("model_type");
  if (!type) fail(origin, " has no \"model_type\"; quopt imports Olmo2 checkpoints (model_type \"olmo2\")");
  if (!type->is_string() || type->get<std::string>() != "olmo2")
    fail(origin, ": \"model_type\" is ", type->dump(),
         "; quopt imports only \"olmo2\" (transformers' Olmo2ForCausalLM), whose blocks it implements");
  if (const Json* arch = f.get("architectures")) {
    bool ok = arch->is_array();
    if (ok) {
      ok = false;
      for (const auto& a : *arch) ok = ok || (a.is_string() && a.get<std::string>() == "Olmo2ForCausalLM");
    }
    if (!ok)
      fail(origin, ": \"architectures\" is ", arch->dump(), "; quopt imports Olmo2ForCausalLM checkpoints");
  }

  ModelConfig m;
  m.vocab_size = f.positive_int("vocab_size");
  m.d_model = f.positive_int("hidden_size");
  m.n_layers = f.positive_int("num_hidden_layers");
  m.n_heads = f.positive_int("num_attention_heads");
  // transformers: num_key_value_heads None means num_attention_heads (configuration_olmo2.py).
  m.n_kv_heads = f.positive_int("num_key_value_heads", m.n_heads);
  if (m.d_model % m.n_heads != 0)
    fail(origin, ": \"hidden_size\" = ", m.d_model,
         " is not a multiple of \"num_attention_heads\" = ", m.n_heads);
  if (m.head_dim() % 2 != 0)
    fail(origin, ": head_dim = hidden_size / num_attention_heads = ", m.head_dim(),
         " is odd; RoPE needs it even");
  if (m.n_heads % m.n_kv_heads != 0)
    fail(origin, ": \"num_attention_heads\" = ", m.n_heads,
         " is not a multiple of \"num_key_value_heads\" = ", m.n_kv_heads);
  if (const Json* hd = f.get("head_dim"))
    if (json_int64(*hd, cat(origin, ": \"head_dim\"")) != m.head_dim())
      fail(origin, ": \"head_dim\" = ", hd->dump(),
           " differs from hidden_size / num_attention_heads = ", m.head_dim(),
           "; quopt's attention has head_dim = hidden_size / num_attention_heads");

  // transformers' Olmo2Config default hidden_act is "silu" (configuration_olmo2.py).
  std::string act = "silu";
  if (const Json* a = f.get("hidden_act")) {
    if (!a->is_string()) fail(origin, ": \"hidden_act\" is ", json_a_type(*a), ", expected a string");
    act = a->get<std::string>();
  }
  if (act == "silu" || act == "swish")
    m.mlp = MlpKind::SwiGLU;
  else if (act == "relu")
    m.mlp = MlpKind::Relu2;  // confirmed from the weights (gate == up) by the importer
  else
    fail(origin, ": \"hidden_act\" = \"", act,
         "\" is not supported; quopt implements silu (SwiGLU) and relu with gate = up (ReLU^2)");

  const std::int64_t inter = f.positive_int("intermediate_size");
  m.mlp_ratio = static_cast<double>(inter) / static_cast<double>(m.d_model);
  if (m.mlp_hidden() != inter)
    fail(origin, ": \"intermediate_size\" = ", inter,
         " cannot be expressed: quopt's MLP width is d_model * mlp_ratio rounded up to a multiple of 8");

  // transformers' Olmo2Config defaults: rms_norm_eps 1e-5, rope_theta 10000, tie_word_embeddings false,
  // max_position_embeddings 2048, initializer_range 0.02 (configuration_olmo2.py).
  m.norm_eps = f.positive_float("rms_norm_eps", 1e-5);
  m.rope_theta = 10000.0;
  if (const Json* rs = f.get("rope_scaling"))
    fail(origin, ": \"rope_scaling\" = ", rs->dump(), " is not supported; quopt implements unscaled RoPE");
  if (const Json* rp = f.get("rope_parameters")) {
    if (!rp->is_object()) fail(origin, ": \"rope_parameters\" is ", json_a_type(*rp), ", expected an object");
    for (const auto& [k, v] : rp->items()) {
      if (k == "rope_theta") continue;
      if (k == "rope_type" && v.is_string() && v.get<std::string>() == "default") continue;
      fail(origin, ": \"rope_parameters\" has \"", k, "\" = ", v.dump(),
           "; quopt implements only default (unscaled) RoPE with rope_theta");
    }
    if (rp->contains("rope_theta")) {
      const Json& t = (*rp)["rope_theta"];
      if (!t.is_number() || !(t.get<double>() > 0))
        fail(origin, ": \"rope_parameters\".\"rope_theta\" = ", t.dump(), " must be a positive number");
      m.rope_theta = t.get<double>();
    }
  }
  if (config.contains("rope_theta") && !config["rope_theta"].is_null()) {
    const double t = f.positive_float("rope_theta", m.rope_theta);
    if (config.contains("rope_parameters") && config["rope_parameters"].contains("rope_theta") &&
        config["rope_parameters"]["rope_theta"].get<double>() != t)
      fail(origin, ": \"rope_theta\" = ", t,
           " and \"rope_parameters\".\"rope_theta\" = ", config["rope_parameters"]["rope_theta"].dump(),
           " disagree");
    m.rope_theta = t;
  }
  if (const Json* p = f.get("partial_rotary_factor"))
    if (!p->is_number() || p->get<double>() != 1.0)
      fail(origin, ": \"partial_rotary_factor\" = ", p->dump(),
           " is not supported; quopt rotates every dimension");
  for (const char* bias : {"attention_bias", "mlp_bias"})
    if (f.boolean(bias, false)) fail(origin, ": \"", bias, "\" is true; quopt's OLMo2 has no biases");
  for (const char* k : {"sliding_window", "layer_types", "clip_qkv"})
    if (const Json* v = f.get(k))
      fail(origin, ": \"", k, "\" = ", v->dump(), " is not supported by quopt's OLMo2");
  m.tie_embeddings = f.boolean("tie_word_embeddings", false);
  m.seq_len = f.positive_int("max_position_embeddings", 2048);
  m.init_std = f.positive_float("initializer_range", 0.02);
  m.qk_norm = true;
  m.z_loss = 0.0;
  if (ignored) *ignored = f.unused();
  return m;
}

std::vector<HfTensorMap> hf_olmo2_tensors(const ModelConfig& m) {
  std::vector<HfTensorMap> out;
  for (const ParamSpec& s : olmo2_param_specs(m)) {
    const std::string layer = s.name.substr(0, s.name.find('/'));
    const std::string param = s.name.substr(s.name.find('/') + 1);
    if (s.name == "embed/weight") {
      out.push_back({s.name, {"model.embed_tokens.weight"}});
      continue;
    }
    if (s.name == "final_norm/weight") {
      out.push_back({s.name, {"model.norm.weight"}});
      continue;
    }
    if (s.name == "head/weight") {
      out.push_back({s.name, {"lm_head.weight"}});
      continue;
    }
    const std::string b =
        "model.layers." + std::to_string(std::stoll(layer.substr(layer.find('.') + 1))) + ".";
    static const std::map<std::string, std::string> names = {
        {"attn_q", "self_attn.q_proj.weight"},
        {"attn_k", "self_attn.k_proj.weight"},
        {"attn_v", "self_attn.v_proj.weight"},
        {"attn_o", "self_attn.o_proj.weight"},
        {"q_norm", "self_attn.q_norm.weight"},
        {"k_norm", "self_attn.k_norm.weight"},
        {"attn_norm", "post_attention_layernorm.weight"},
        {"mlp_gate", "mlp.gate_proj.weight"},
        {"mlp_up", "mlp.up_proj.weight"},
        {"mlp_down", "mlp.down_proj.weight"},
        {"mlp_norm", "post_feedforward_layernorm.weight"},
    };
    const auto it = names.find(param);
    QUOPT_CHECK(it != names.end(), "no Hugging Face name for parameter ", s.name);
    HfTensorMap t{s.name, {b + it->second}};
    if (param == "mlp_up" && m.mlp == MlpKind::Relu2) t.hf.insert(t.hf.begin(), b + "mlp.gate_proj.weight");
    out.push_back(std::move(t));
  }
  return out;
}

bool hf_tensor_is_buffer(const std::string& name) {
  const std::string suffix = "rotary_emb.inv_freq";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace quopt
