// quopt's OLMo2 in transformers' terms (io/hf_olmo2): config.json written and read back, the tensor
// names, the ReLU^2-as-gated-MLP identity, and every config quopt cannot represent rejected by field.
#include <gtest/gtest.h>

#include <cmath>

#include "io/hf_olmo2.hpp"
#include "kernels/ops.hpp"
#include "model/olmo2.hpp"
#include "support/error_of.hpp"

namespace quopt {
namespace {

using testing::error_of;

ModelConfig swiglu_gqa() {
  ModelConfig m;
  m.d_model = 48;
  m.n_layers = 3;
  m.n_heads = 6;
  m.n_kv_heads = 2;
  m.mlp = MlpKind::SwiGLU;
  m.mlp_ratio = 8.0 / 3.0;
  m.tie_embeddings = false;
  m.rope_theta = 12345.0;
  m.vocab_size = 300;
  m.seq_len = 40;
  m.norm_eps = 1e-5;
  m.init_std = 0.01;
  return m;
}

TEST(HfOlmo2, ConfigSetsEveryFieldAndReadsBack) {
  const ModelConfig m = swiglu_gqa();
  const Json j = hf_olmo2_config(m, {.bos = std::nullopt, .eos = 7, .pad = 7});
  EXPECT_EQ(j["model_type"], "olmo2");
  EXPECT_EQ(j["architectures"], Json::array({"Olmo2ForCausalLM"}));
  EXPECT_EQ(j["hidden_size"], 48);
  EXPECT_EQ(j["intermediate_size"], m.mlp_hidden());
  EXPECT_EQ(j["num_key_value_heads"], 2);
  EXPECT_EQ(j["hidden_act"], "silu");
  EXPECT_EQ(j["rms_norm_eps"], 1e-5);
  EXPECT_EQ(j["rope_theta"], 12345.0);
  EXPECT_EQ(j["rope_parameters"]["rope_theta"], 12345.0);
  EXPECT_EQ(j["tie_word_embeddings"], false);
  EXPECT_EQ(j["eos_token_id"], 7);
  EXPECT_TRUE(j["bos_token_id"].is_null());
  EXPECT_EQ(j["attention_bias"], false);

  std::vector<std::string> ignored;
  const ModelConfig r = model_config_from_hf(parse_json(j.dump()), "config.json", &ignored);
  EXPECT_EQ(r.d_model, m.d_model);
  EXPECT_EQ(r.n_layers, m.n_layers);
  EXPECT_EQ(r.n_heads, m.n_heads);
  EXPECT_EQ(r.n_kv_heads, m.n_kv_heads);
  EXPECT_EQ(r.mlp, m.mlp);
  EXPECT_EQ(r.mlp_hidden(), m.mlp_hidden());
  EXPECT_EQ(r.tie_embeddings, m.tie_embeddings);
  EXPECT_EQ(r.rope_theta, m.rope_theta);
  EXPECT_EQ(r.vocab_size, m.vocab_size);
  EXPECT_EQ(r.seq_len, m.seq_len);
  EXPECT_EQ(r.norm_eps, m.norm_eps);
  EXPECT_EQ(r.init_std, m.init_std);
  EXPECT_EQ(olmo2_param_specs(r).size(), olmo2_param_specs(m).size());
  EXPECT_NE(std::find(ignored.begin(), ignored.end(), "eos_token_id"), ignored.end());

  ModelConfig relu;  // defaults: ReLU^2, tied
  EXPECT_EQ(hf_olmo2_config(relu, {})["hidden_act"], "relu");
  EXPECT_EQ(model_config_from_hf(hf_olmo2_config(relu, {}), "c").mlp, MlpKind::Relu2);
  relu.qk_norm = false;
  EXPECT_NE(error_of([&] { hf_olmo2_config(relu, {}); }).find("model.qk_norm = false cannot be exported"),
            std::string::npos);
}

TEST(HfOlmo2, TransformersDefaultsApplyToMissingFields) {
  const Json j = parse_json(R"({"model_type": "olmo2", "vocab_size": 100, "hidden_size": 16,
      "intermediate_size": 40, "num_hidden_layers": 1, "num_attention_heads": 2})");
  const ModelConfig m = model_config_from_hf(j, "c");
  EXPECT_EQ(m.n_kv_heads, 2);  // None -> num_attention_heads
  EXPECT_EQ(m.mlp, MlpKind::SwiGLU);
  EXPECT_EQ(m.norm_eps, 1e-5);
  EXPECT_EQ(m.rope_theta, 10000.0);
  EXPECT_FALSE(m.tie_embeddings);
  EXPECT_EQ(m.seq_len, 2048);
  // transformers 5 form.
  const Json v5 = parse_json(R"({"model_type": "olmo2", "vocab_size": 100, "hidden_size": 16,
      "intermediate_size": 40, "num_hidden_layers": 1, "num_attention_heads": 2,
      "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}})");
  EXPECT_EQ(model_config_from_hf(v5, "c").rope_theta, 500000.0);
}

TEST(HfOlmo2, RejectsWhatQuoptCannotRepresentByField) {
  const std::string base = R"("vocab_size": 100, "hidden_size": 16, "intermediate_size": 40,
      "num_hidden_layers": 1, "num_attention_heads": 2)";
  struct Case {
    std::string extra;
    const char* expect;
  };
  const Case cases[] = {
      {R"("model_type": "llama")", "\"model_type\" is \"llama\"; quopt imports only \"olmo2\""},
      {"", "has no \"model_type\""},
      {R"("model_type": "olmo2", "architectures": ["LlamaForCausalLM"])", "\"architectures\""},
      {R"("model_type": "olmo2", "attention_bias": true)",
       "\"attention_bias\" is true; quopt's OLMo2 has no biases"},
      {R"("model_type": "olmo2", "mlp_bias": true)", "\"mlp_bias\" is true"},
      {R"("model_type": "olmo2", "rope_scaling": {"rope_type": "linear", "factor": 2.0})",
       "\"rope_scaling\""},
      {R"("model_type": "olmo2", "rope_parameters": {"rope_type": "yarn", "rope_theta": 1.0})",
       "\"rope_parameters\" has \"rope_type\" = \"yarn\""},
      {R"("model_type": "olmo2", "rope_theta": 5.0, "rope_parameters": {"rope_theta": 6.0})", "disagree"},
      {R"("model_type": "olmo2", "head_dim": 4)",
       "\"head_dim\" = 4 differs from hidden_size / num_attention_heads = 8"},
      {R"("model_type": "olmo2", "hidden_act": "gelu")", "\"hidden_act\" = \"gelu\" is not supported"},
      {R"("model_type": "olmo2", "num_key_value_heads": 3)",
       "is not a multiple of \"num_key_value_heads\" = 3"},
      {R"("model_type": "olmo2", "partial_rotary_factor": 0.5)", "\"partial_rotary_factor\""},
      {R"("model_type": "olmo2", "sliding_window": 128)", "\"sliding_window\""},
      {R"("model_type": "olmo2", "rms_norm_eps": -1)", "\"rms_norm_eps\" = -1 must be positive"},
      {R"("model_type": "olmo2", "tie_word_embeddings": "yes")", "\"tie_word_embeddings\" is a string"},
  };
  for (const Case& c : cases) {
    const std::string text = "{" + base + (c.extra.empty() ? "" : ", " + c.extra) + "}";
    const std::string msg = error_of([&] { model_config_from_hf(parse_json(text), "hf/config.json"); });
    EXPECT_EQ(msg.rfind("hf/config.json", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << text << "\n" << msg;
  }
  const std::string odd =
      R"({"model_type": "olmo2", "vocab_size": 100, "hidden_size": 16, "intermediate_size": 41,
      "num_hidden_layers": 1, "num_attention_heads": 2})";
  EXPECT_NE(
      error_of([&] { model_config_from_hf(parse_json(odd), "c"); }).find("\"intermediate_size\" = 41 cannot"),
      std::string::npos);
  const std::string missing = R"({"model_type": "olmo2", "vocab_size": 100})";
  EXPECT_NE(error_of([&] { model_config_from_hf(parse_json(missing), "c"); }).find("has no \"hidden_size\""),
            std::string::npos);
}

TEST(HfOlmo2, TensorNames) {
  ModelConfig relu;  // ReLU^2, tied: mlp_up is gate_proj and up_proj; no lm_head
  relu.n_layers = 2;
  const auto t = hf_olmo2_tensors(relu);
  EXPECT_EQ(t.size(), olmo2_param_specs(relu).size());
  EXPECT_EQ(t.front().quopt, "embed/weight");
  EXPECT_EQ(t.front().hf, std::vector<std::string>{"model.embed_tokens.weight"});
  std::map<std::string, std::vector<std::string>> by;
  for (const auto& m : t) by[m.quopt] = m.hf;
  EXPECT_EQ(by["block.01/mlp_up"], (std::vector<std::string>{"model.layers.1.mlp.gate_proj.weight",
                                                             "model.layers.1.mlp.up_proj.weight"}));
  EXPECT_EQ(by["block.00/attn_q"], std::vector<std::string>{"model.layers.0.self_attn.q_proj.weight"});
  EXPECT_EQ(by["block.00/k_norm"], std::vector<std::string>{"model.layers.0.self_attn.k_norm.weight"});
  EXPECT_EQ(by["block.00/attn_norm"],
            std::vector<std::string>{"model.layers.0.post_attention_layernorm.weight"});
  EXPECT_EQ(by["block.01/mlp_norm"],
            std::vector<std::string>{"model.layers.1.post_feedforward_layernorm.weight"});
  EXPECT_EQ(by["block.01/mlp_down"], std::vector<std::string>{"model.layers.1.mlp.down_proj.weight"});
  EXPECT_EQ(by["final_norm/weight"], std::vector<std::string>{"model.norm.weight"});
  EXPECT_EQ(by.count("head/weight"), 0u);

  const auto s = hf_olmo2_tensors(swiglu_gqa());
  std::map<std::string, std::vector<std::string>> sb;
  for (const auto& m : s) sb[m.quopt] = m.hf;
  EXPECT_EQ(sb["block.02/mlp_gate"], std::vector<std::string>{"model.layers.2.mlp.gate_proj.weight"});
  EXPECT_EQ(sb["block.02/mlp_up"], std::vector<std::string>{"model.layers.2.mlp.up_proj.weight"});
  EXPECT_EQ(sb["head/weight"], std::vector<std::string>{"lm_head.weight"});
  EXPECT_TRUE(hf_tensor_is_buffer("model.layers.0.self_attn.rotary_emb.inv_freq"));
  EXPECT_FALSE(hf_tensor_is_buffer("model.layers.0.self_attn.q_proj.weight"));
}

// The identity the ReLU^2 export rests on: relu(z) * z == relu(z)^2 bitwise in f32 (the exported MLP
// computes relu(gate x) * (up x) with gate = up, so both factors are the same z).
TEST(HfOlmo2, Relu2IsReluGateTimesUpExactly) {
  Tensor z = Tensor::empty({1, 4096});
  float* zp = z.data<float>();
  for (int i = 0; i < 4096; ++i) zp[i] = std::ldexp(static_cast<float>(i % 97) - 48.5f, (i % 31) - 15);
  zp[0] = 0.0f;
  zp[1] = -0.0f;
  Tensor relu2 = Tensor::empty({1, 4096});
  kernels::relu2_forward(z, relu2);
  for (int i = 0; i < 4096; ++i) {
    const float gated = std::max(zp[i], 0.0f) * zp[i];  // transformers: act_fn(gate) * up
    EXPECT_EQ(gated, relu2.data<float>()[i])
        << zp[i];  // == compares -0 and +0 equal, which a matmul cannot tell
  }
}

}  // namespace
}  // namespace quopt
