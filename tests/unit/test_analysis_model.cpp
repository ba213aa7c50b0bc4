// analyze_model on a small OLMo2: the quantized model has RTN weights (written here) and a LinearQuant
// that perturbs activations. Checks the identity R = A + B + C on every module and layer, R_L and the
// layer inputs' relative errors against direct forwards, one layer's ABC and G1 against fp64
// computations written out here, the outlier metrics' plumbing, and chunking invariance.
#include <gtest/gtest.h>
#include <lapacke.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "analysis/model_analysis.hpp"
#include "analysis/outliers.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "kernels/ops.hpp"

namespace quopt {
namespace {

ModelConfig small_config(MlpKind mlp = MlpKind::Relu2) {
  ModelConfig cfg;
  cfg.d_model = 16;
  cfg.n_layers = 2;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 2;
  cfg.vocab_size = 23;
  cfg.seq_len = 8;
  cfg.mlp = mlp;
  return cfg;
}

Tensor random_tokens(std::int64_t B, std::int64_t T, std::int64_t V, std::uint64_t seed) {
  Tensor t = Tensor::empty({B, T}, DType::I32);
  Rng rng(seed, 3);
  for (std::int64_t i = 0; i < B * T; ++i)
    t.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(V));
  return t;
}

// 4-bit symmetric AbsMax per row, round to nearest (the study's RTN), in place.
void rtn_rows(Tensor& w, int bits) {
  const std::int64_t rows = w.dim(0), cols = w.dim(1);
  const double qmax = (1 << (bits - 1)) - 1;
  float* p = w.data<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    double amax = 0.0;
    for (std::int64_t c = 0; c < cols; ++c)
      amax = std::max(amax, std::fabs(static_cast<double>(p[r * cols + c])));
    const double scale = amax > 0.0 ? amax / qmax : 1.0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const double q = std::clamp(std::round(p[r * cols + c] / scale), -qmax, qmax);
      p[r * cols + c] = static_cast<float>(q * scale);
    }
  }
}

// A deterministic activation perturbation: x -> x + delta sin(37 x + j), then x W^T.
class NoisyActLinear : public LinearQuant {
 public:
  NoisyActLinear(double delta, std::vector<std::string> layers) : delta_(delta), layers_(std::move(layers)) {}
  bool applies(const std::string& param) const override {
    return std::find(layers_.begin(), layers_.end(), param) != layers_.end();
  }
  Tensor perturb(const Tensor& x) const {
    Tensor xp = x.clone();
    const std::int64_t C = x.dim(-1);
    float* p = xp.data<float>();
    for (std::int64_t i = 0; i < xp.numel(); ++i)
      p[i] = static_cast<float>(p[i] + delta_ * std::sin(37.0 * p[i] + static_cast<double>(i % C)));
    return xp;
  }
  void forward(const Tensor& x, const Tensor& w, Tensor& y, LinearCache&) const override {
    kernels::matmul(perturb(x), false, w, true, y);
  }
  void backward(const Tensor&, const Tensor&, const Tensor&, const LinearCache&, Tensor&, bool,
                Tensor&) const override {
    fail("NoisyActLinear is for forwards only");
  }

 private:
  double delta_;
  std::vector<std::string> layers_;
};

struct Models {
  ModelConfig cfg;
  std::unique_ptr<Olmo2> fp, q;
  std::shared_ptr<NoisyActLinear> lq;
};

// fp: OLMo2 init; q: the same weights with RTN on every block linear and on the embedding (also the
// tied head), plus activation noise on every block linear but attn_o.
Models make_models(MlpKind mlp = MlpKind::Relu2, bool quantize = true) {
  Models m;
  m.cfg = small_config(mlp);
  m.fp = std::make_unique<Olmo2>(m.cfg);
  m.q = std::make_unique<Olmo2>(m.cfg);
  m.fp->init(42);
  m.q->init(42);
  if (quantize) {
    for (auto& p : m.q->params().all())
      if (p.role != ParamRole::Gain) rtn_rows(p.value, 4);
    m.lq = std::make_shared<NoisyActLinear>(
        0.02, std::vector<std::string>{"attn_q", "attn_k", "attn_v", "mlp_up", "mlp_gate", "mlp_down"});
    m.q->set_linear_quant(m.lq);
  }
  return m;
}

// The module chain run directly: the outputs of every module (whole, and their measured values), and the
// inputs of every block linear.
struct Trace {
  std::vector<Tensor> outputs, values;
  std::map<std::string, Tensor> linear_inputs;  // "block.00/attn_q" -> x
};
Trace trace(Olmo2& model, const Tensor& tokens) {
  Trace t;
  model.set_linear_observer([&](std::int64_t b, const std::string& p, const Tensor& x, const Tensor&) {
    t.linear_inputs[block_name(b) + "/" + p] = x.clone();
  });
  Tensor h = tokens;
  for (std::int64_t m = 0; m < model.module_count(); ++m) {
    h = model.module_forward(m, h, tokens.dim(0), tokens.dim(1));
    t.outputs.push_back(h);
    t.values.push_back(model.module_value(m, h));
  }
  model.set_linear_observer(nullptr);
  return t;
}

double rel_err(const Tensor& xq, const Tensor& x) {
  double d = 0.0, r = 0.0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double a = x.item(i), e = xq.item(i) - a;
    d += e * e;
    r += a * a;
  }
  return d / r;
}

void expect_identity(const AbcTerms& t, const std::string& what) {
  EXPECT_TRUE(std::isfinite(t.R)) << what;
  EXPECT_NEAR(t.R, t.A + t.B + t.C, 1e-12 * (t.A + t.B + std::fabs(t.C)) + 1e-300) << what;
}

double sigma_max(const Tensor& w32) {
  const Tensor w = w32.astype(DType::F64);
  std::vector<double> a(w.data<double>(), w.data<double>() + w.numel());
  const std::int64_t m = w.dim(0), n = w.dim(1);
  std::vector<double> s(static_cast<std::size_t>(std::min(m, n))), superb(s.size() + 1);
  EXPECT_EQ(
      LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', static_cast<lapack_int>(m), static_cast<lapack_int>(n),
                     a.data(), static_cast<lapack_int>(n), s.data(), nullptr, 1, nullptr, 1, superb.data()),
      0);
  return s[0];
}

double expected_g1(const Tensor& w, const Tensor& wq) {
  Tensor mid = Tensor::empty(w.shape(), DType::F64);
  for (std::int64_t i = 0; i < w.numel(); ++i)
    mid.data<double>()[i] = w.item(i) + 0.5 * (wq.item(i) - w.item(i));
  const double r = sigma_max(mid) / sigma_max(w);
  return r * r;
}

TEST(AnalysisModel, IdentityAndDirectChecks) {
  Models m = make_models();
  const Tensor tokens = random_tokens(3, 8, m.cfg.vocab_size, 7);
  const AnalysisResult r = analyze_model(*m.fp, *m.q, tokens);

  // Chain layout.
  ASSERT_EQ(static_cast<std::int64_t>(r.modules.size()), m.fp->module_count());
  EXPECT_EQ(r.modules.front().name, "embed");
  EXPECT_EQ(r.modules[1].name, "block.00.attn");
  EXPECT_EQ(r.modules[2].name, "block.00.attn_norm");
  EXPECT_EQ(r.modules[3].name, "block.00.mlp");
  EXPECT_EQ(r.modules[4].name, "block.00.mlp_norm");
  EXPECT_EQ(r.modules[5].name, "block.01.attn");
  EXPECT_EQ(r.modules.back().name, "head");
  EXPECT_TRUE(r.modules.back().linear);
  EXPECT_EQ(r.tokens, 24);
  ASSERT_EQ(r.layers.size(), 12u);  // 2 blocks x (q, k, v, o, up, down)
  EXPECT_EQ(r.layers[0].layer, "block.00");
  EXPECT_EQ(r.layers[0].param, "attn_q");
  EXPECT_EQ(r.layers[5].param, "mlp_down");
  EXPECT_EQ(r.layers[6].layer, "block.01");

  for (const auto& mod : r.modules) expect_identity(mod.abc, mod.name);
  for (const auto& l : r.layers) expect_identity(l.abc, l.layer + "/" + l.param);

  // Embedding: same tokens in both, so no propagated error; the local error is the whole error.
  EXPECT_EQ(r.modules[0].abc.A, 0.0);
  EXPECT_EQ(r.modules[0].abc.C, 0.0);
  EXPECT_GT(r.modules[0].abc.B, 0.0);
  EXPECT_TRUE(std::isnan(r.modules[0].abc.G));
  EXPECT_TRUE(std::isnan(r.modules[0].R_in));

  // R of every module (R_L included) against the directly propagated chains, on the measured values
  // (the branch output of attn and mlp, not the residual passed beside it); R_in on the whole input
  // state (for a norm module: the residual and the branch output), and G = A / R_in.
  const Trace tf = trace(*m.fp, tokens), tq = trace(*m.q, tokens);
  for (std::size_t i = 0; i < r.modules.size(); ++i) {
    const ModuleAnalysis& mod = r.modules[i];
    const double R = rel_err(tq.values[i], tf.values[i]);
    EXPECT_NEAR(mod.abc.R, R, 1e-9 * R) << mod.name;
    if (i == 0) continue;
    const double R_in = rel_err(tq.outputs[i - 1], tf.outputs[i - 1]);
    EXPECT_NEAR(mod.R_in, R_in, 1e-9 * R_in) << mod.name;
    EXPECT_NEAR(mod.abc.G, mod.abc.A / R_in, 1e-9 * mod.abc.G) << mod.name;
    const bool branch_before = mod.name.size() > 5 &&
                               mod.name.compare(mod.name.size() - 5, 5, "_norm") == 0 &&
                               mod.name != "final_norm";
    if (!branch_before) {
      EXPECT_NEAR(mod.R_in, r.modules[i - 1].abc.R, 1e-12 * mod.R_in) << mod.name;
    }
  }
  // The norm modules are not quantized (their gains are full precision in both models): no local error,
  // the whole error is propagated (B = C = 0 exactly, A = R). The quantized branches add local error.
  for (const auto& mod : r.modules) {
    const bool norm = mod.name.find("norm") != std::string::npos;
    if (norm) {
      EXPECT_EQ(mod.abc.B, 0.0) << mod.name;
      EXPECT_EQ(mod.abc.C, 0.0) << mod.name;
      EXPECT_NEAR(mod.abc.A, mod.abc.R, 1e-12 * mod.abc.R) << mod.name;
    } else if (mod.name != "embed") {
      EXPECT_GT(mod.abc.B, 0.0) << mod.name;
    }
  }
  EXPECT_EQ(r.R_L, r.modules.back().abc.R);
  EXPECT_GT(r.R_L, 0.0);

  // Layer inputs: R_in against the traced inputs; the attention linears' input is the embedding output
  // (block 0), so R_in of block.00/attn_q is the embedding module's R.
  for (const auto& l : r.layers) {
    const std::string key = l.layer + "/" + l.param;
    EXPECT_NEAR(l.R_in, rel_err(tq.linear_inputs.at(key), tf.linear_inputs.at(key)), 1e-9 * l.R_in) << key;
    EXPECT_NEAR(l.abc.G, l.abc.A / l.R_in, 1e-12 * l.abc.G) << key;
    EXPECT_EQ(l.quantized_arithmetic, l.param != "attn_o") << key;
  }
  EXPECT_NEAR(r.layers[0].R_in, r.modules[0].abc.R, 1e-12 * r.layers[0].R_in);
  // mlp_up reads the residual stream after the attention half: the attn_norm module's output.
  EXPECT_NEAR(r.layers[4].R_in, r.modules[2].abc.R, 1e-12 * r.layers[4].R_in);

  // One layer's ABC written out: block.01/mlp_up, f(x) = x W^T, fq(x) = noisy(x) Wq^T, all in fp64.
  {
    const LinearLayerAnalysis& l = r.layers[10];
    ASSERT_EQ(l.layer + "/" + l.param, "block.01/mlp_up");
    const Tensor& w = m.fp->params().get("block.01/mlp_up").value;
    const Tensor& wq = m.q->params().get("block.01/mlp_up").value;
    const Tensor h = tf.linear_inputs.at("block.01/mlp_up"), hq = tq.linear_inputs.at("block.01/mlp_up");
    const Tensor hn = m.lq->perturb(h), hqn = m.lq->perturb(hq);
    const std::int64_t N = h.dim(0), K = h.dim(1), O = w.dim(0);
    double h2 = 0, a2 = 0, b2 = 0, ab = 0;
    for (std::int64_t i = 0; i < N; ++i)
      for (std::int64_t o = 0; o < O; ++o) {
        double qq = 0, qh = 0, fq = 0, fh = 0;
        for (std::int64_t k = 0; k < K; ++k) {
          qq += hqn.item(i * K + k) * wq.item(o * K + k);
          qh += hn.item(i * K + k) * wq.item(o * K + k);
          fq += hq.item(i * K + k) * w.item(o * K + k);
          fh += h.item(i * K + k) * w.item(o * K + k);
        }
        const double a = 0.5 * ((qq - qh) + (fq - fh)), b = 0.5 * ((qq - fq) + (qh - fh));
        h2 += fh * fh;
        a2 += a * a;
        b2 += b * b;
        ab += a * b;
      }
    // The analysis multiplies in f32 (the model's GEMM); 1e-4 relative covers that rounding.
    EXPECT_NEAR(l.abc.A, a2 / h2, 1e-4 * a2 / h2);
    EXPECT_NEAR(l.abc.B, b2 / h2, 1e-4 * b2 / h2);
    EXPECT_NEAR(l.abc.C, 2 * ab / h2, 1e-4 * (a2 + b2) / h2);
  }

  // G1 of every linear and of the tied head against singular values from dgesvd.
  for (const auto& l : r.layers) {
    const std::string key = l.layer + "/" + l.param;
    const double g1 = expected_g1(m.fp->params().get(key).value, m.q->params().get(key).value);
    EXPECT_NEAR(l.abc.G1, g1, 1e-10 * g1) << key;
    EXPECT_NEAR(l.abc.G2, l.abc.G / l.abc.G1, 1e-12 * l.abc.G2) << key;
  }
  const double g1_head =
      expected_g1(m.fp->params().get("embed/weight").value, m.q->params().get("embed/weight").value);
  EXPECT_NEAR(r.modules.back().abc.G1, g1_head, 1e-10 * g1_head);
  EXPECT_NE(r.modules.back().abc.G1, 1.0);
  for (std::size_t i = 0; i + 1 < r.modules.size(); ++i) EXPECT_TRUE(std::isnan(r.modules[i].abc.G1));

  // Outlier metrics of the full-precision inputs and weights, and the aggregates.
  std::vector<double> mmrs, kurts;
  for (const auto& l : r.layers) {
    const std::string key = l.layer + "/" + l.param;
    const Tensor& x = tf.linear_inputs.at(key);
    EXPECT_NEAR(l.act_mmr, mmr_median(x), 1e-12 * l.act_mmr) << key;
    EXPECT_NEAR(l.act_mmr_mean, mmr_mean(x), 1e-12 * l.act_mmr_mean) << key;
    EXPECT_NEAR(l.act_kurtosis, kurtosis(x), 1e-10 * l.act_kurtosis) << key;
    EXPECT_NEAR(l.act_rms_kurtosis, rms_kurtosis(x), 1e-10 * l.act_rms_kurtosis) << key;
    EXPECT_EQ(l.act_rows, 24);
    const Tensor& w = m.fp->params().get(key).value;
    EXPECT_NEAR(l.weight_mmr, mmr_median(w), 1e-12 * l.weight_mmr) << key;
    EXPECT_NEAR(l.weight_kurtosis, kurtosis(w), 1e-12 * l.weight_kurtosis) << key;
    mmrs.push_back(l.act_mmr);
    kurts.push_back(l.act_kurtosis);
  }
  double s = 0;
  for (double v : mmrs) s += v;
  EXPECT_NEAR(r.mmr_mean, s / mmrs.size(), 1e-12 * r.mmr_mean);
  EXPECT_EQ(r.mmr_max, *std::max_element(mmrs.begin(), mmrs.end()));
  EXPECT_EQ(r.kurtosis_max, *std::max_element(kurts.begin(), kurts.end()));
  EXPECT_GE(r.kurtosis_max, r.kurtosis_mean);
}

TEST(AnalysisModel, ChunkSizeChangesOnlyRounding) {
  Models m = make_models(MlpKind::SwiGLU);
  const Tensor tokens = random_tokens(4, 8, m.cfg.vocab_size, 8);
  AnalysisOptions one, all;
  one.chunk_sequences = 1;
  all.chunk_sequences = 3;  // chunks of 3 and 1
  const AnalysisResult a = analyze_model(*m.fp, *m.q, tokens, one);
  const AnalysisResult b = analyze_model(*m.fp, *m.q, tokens, all);
  ASSERT_EQ(a.layers.size(), 14u);  // SwiGLU adds mlp_gate
  EXPECT_EQ(a.layers[5].param, "mlp_gate");
  auto close = [](double x, double y) { return std::fabs(x - y) <= 1e-9 * std::fabs(x) + 1e-300; };
  for (std::size_t i = 0; i < a.modules.size(); ++i) {
    EXPECT_TRUE(close(a.modules[i].abc.R, b.modules[i].abc.R)) << a.modules[i].name;
    EXPECT_TRUE(close(a.modules[i].abc.A, b.modules[i].abc.A)) << a.modules[i].name;
    EXPECT_TRUE(close(a.modules[i].abc.B, b.modules[i].abc.B)) << a.modules[i].name;
  }
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    EXPECT_TRUE(close(a.layers[i].abc.R, b.layers[i].abc.R)) << a.layers[i].param;
    EXPECT_TRUE(close(a.layers[i].act_kurtosis, b.layers[i].act_kurtosis)) << a.layers[i].param;
    EXPECT_TRUE(close(a.layers[i].act_rms_kurtosis, b.layers[i].act_rms_kurtosis)) << a.layers[i].param;
    EXPECT_TRUE(close(a.layers[i].act_mmr, b.layers[i].act_mmr)) << a.layers[i].param;
  }
  EXPECT_TRUE(close(a.R_L, b.R_L));
}

TEST(AnalysisModel, UnquantizedModelHasNoError) {
  Models m = make_models(MlpKind::Relu2, /*quantize=*/false);
  const Tensor tokens = random_tokens(2, 8, m.cfg.vocab_size, 9);
  const AnalysisResult r = analyze_model(*m.fp, *m.q, tokens);
  for (const auto& mod : r.modules) {
    EXPECT_EQ(mod.abc.R, 0.0) << mod.name;
    EXPECT_EQ(mod.abc.A, 0.0) << mod.name;
    EXPECT_EQ(mod.abc.B, 0.0) << mod.name;
    EXPECT_TRUE(std::isnan(mod.abc.G)) << mod.name;  // R_in = 0: no gain
  }
  EXPECT_EQ(r.modules.back().abc.G1, 1.0);
  for (const auto& l : r.layers) {
    EXPECT_EQ(l.abc.R, 0.0);
    EXPECT_EQ(l.abc.G1, 1.0);
    EXPECT_FALSE(l.quantized_arithmetic);
  }
  EXPECT_EQ(r.R_L, 0.0);
}

TEST(AnalysisModel, RejectsMismatchedInput) {
  Models m = make_models();
  ModelConfig other = m.cfg;
  other.d_model = 32;
  Olmo2 wide(other);
  wide.init(1);
  const Tensor tokens = random_tokens(2, 8, m.cfg.vocab_size, 9);
  EXPECT_THROW(analyze_model(*m.fp, wide, tokens), Error);
  EXPECT_THROW(analyze_model(*m.fp, *m.q, random_tokens(2, 9, m.cfg.vocab_size, 1)), Error);  // > seq_len
  EXPECT_THROW(analyze_model(*m.fp, *m.q, Tensor::zeros({2, 4}, DType::F32)), Error);
  AnalysisOptions bad;
  bad.chunk_sequences = 0;
  EXPECT_THROW(analyze_model(*m.fp, *m.q, tokens, bad), Error);
}

}  // namespace
}  // namespace quopt
