#pragma once
// Shared by the optimizers' unit tests (tests/unit/test_optim_*.cpp): an independent fp64 Newton-Schulz
// iteration as the Muon reference writes it, the tiny OLMo2 model trained on a learnable synthetic task,
// and the check that a shipped inputs/optimizers/<name>.toml sets every key of its optimizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/config.hpp"
#include "io/run_config.hpp"
#include "model/olmo2.hpp"
#include "optim/optimizer.hpp"
#include "support/dense_reference.hpp"

namespace quopt::testing {

// The quintic's coefficients (a, b, c) of KellerJordan/Muon's zeropower_via_newtonschulz5, written here
// independently of the production defaults.
inline constexpr double kNsA = 3.4445, kNsB = -4.7750, kNsC = 2.0315;

// NS5 as KellerJordan/Muon writes it, in fp64 with plain loops: X = G (transposed if tall) /
// (||G||_F + 1e-7); `steps` times A = X X^T, B = b A + c A A, X = a X + B X; transpose back.
inline Mat naive_ns(const Mat& g, int m, int n, int steps = 5) {
  const bool tall = m > n;
  const int r = tall ? n : m, c = tall ? m : n;  // X is r x c with r <= c
  double ss = 0.0;
  for (double v : g) ss += v * v;
  const double nrm = std::sqrt(ss) + 1e-7;
  Mat x(static_cast<std::size_t>(r * c));
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < c; ++j) x[i * c + j] = (tall ? g[j * n + i] : g[i * n + j]) / nrm;
  for (int s = 0; s < steps; ++s) {
    Mat A(static_cast<std::size_t>(r * r), 0.0), B(A.size(), 0.0);
    for (int i = 0; i < r; ++i)
      for (int j = 0; j < r; ++j)
        for (int k = 0; k < c; ++k) A[i * r + j] += x[i * c + k] * x[j * c + k];
    for (int i = 0; i < r; ++i)
      for (int j = 0; j < r; ++j) {
        double aa = 0.0;
        for (int k = 0; k < r; ++k) aa += A[i * r + k] * A[k * r + j];
        B[i * r + j] = kNsB * A[i * r + j] + kNsC * aa;
      }
    Mat y = x;  // y = a x + B x
    for (int i = 0; i < r; ++i)
      for (int j = 0; j < c; ++j) {
        double bx = 0.0;
        for (int k = 0; k < r; ++k) bx += B[i * r + k] * x[k * c + j];
        y[i * c + j] = kNsA * y[i * c + j] + bx;
      }
    x.swap(y);
  }
  Mat out(g.size());
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < c; ++j) (tall ? out[j * n + i] : out[i * n + j]) = x[i * c + j];
  return out;
}

// The tiny OLMo2 model the optimizers are trained on (test choice: small enough for 100+ steps in a
// unit test, large enough to learn the permutation task): 2 blocks of width 32, vocabulary 64.
inline ModelConfig tiny_model() {
  ModelConfig mc;
  mc.d_model = 32;
  mc.n_layers = 2;
  mc.n_heads = 4;
  mc.n_kv_heads = 4;
  mc.vocab_size = 64;
  mc.seq_len = 16;
  return mc;
}

// Trains `model` for `steps` steps of batch 8 on sequences that follow a fixed random permutation
// t -> perm[t] (the target of each token is the next one) and returns the last step's loss; the first
// step's loss goes to *first_loss when given.
inline double train_tiny(Optimizer& opt, Olmo2& model, int steps, double lr, double* first_loss = nullptr) {
  const ModelConfig& mc = model.config();
  const std::int64_t B = 8, T = mc.seq_len, V = mc.vocab_size;
  std::vector<std::int32_t> perm(static_cast<std::size_t>(V));
  Rng prng(77, 1);
  for (std::int64_t i = 0; i < V; ++i) perm[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
  for (std::int64_t i = V - 1; i > 0; --i)
    std::swap(perm[static_cast<std::size_t>(i)], perm[prng.below(static_cast<std::uint64_t>(i + 1))]);
  Rng drng(78, 2);
  double last = 0.0;
  for (int s = 0; s < steps; ++s) {
    Tensor tok = Tensor::empty({B, T}, DType::I32), tgt = Tensor::empty({B, T}, DType::I32);
    for (std::int64_t b = 0; b < B; ++b) {
      auto t = static_cast<std::int32_t>(drng.below(static_cast<std::uint64_t>(V)));
      for (std::int64_t i = 0; i < T; ++i) {
        tok.data<std::int32_t>()[b * T + i] = t;
        t = perm[static_cast<std::size_t>(t)];
        tgt.data<std::int32_t>()[b * T + i] = t;
      }
    }
    model.params().zero_grads();
    Activations act;
    const LossSum l = model.forward(tok, tgt, act);
    model.backward(act, 1.0 / static_cast<double>(l.count));
    opt.step(model.params(), lr);
    last = l.sum / static_cast<double>(l.count);
    if (s == 0 && first_loss != nullptr) *first_loss = last;
  }
  return last;
}

// inputs/optimizers/<name>.toml loaded with quopt's schema; checks that it selects `name`.
inline Config load_shipped_optimizer_toml(const std::string& name) {
  const std::filesystem::path root =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
  Config c = Config::load(quopt_schema(), (root / "inputs" / "optimizers" / (name + ".toml")).string());
  EXPECT_EQ(c.get_string("optimizer.name"), name);
  return c;
}

// Every optimizer.<name>.* key is set in the file (not left to the default) and equals the schema's
// default: the shipped file documents the reference defaults and the code agrees with it.
inline void expect_every_key_set_at_default(const Config& c, const std::string& name) {
  const std::string prefix = "optimizer." + name + ".";
  int keys = 0;
  for (const auto& spec : c.schema().specs())
    if (spec.key.rfind(prefix, 0) == 0) {
      ++keys;
      EXPECT_NE(c.source(spec.key), "default") << spec.key << " missing from " << name << ".toml";
      EXPECT_EQ(c.get(spec.key), spec.default_value) << spec.key;
    }
  EXPECT_GT(keys, 0) << "the schema has no " << prefix << "* keys";
}

// Largest |parameter - reference| relative to the largest |reference| value, over every parameter.
inline double max_rel_diff(const ParameterSet& ps, const std::map<std::string, Mat>& ref) {
  double diff = 0, scale = 0;
  for (const auto& p : ps.all()) {
    const Mat& r = ref.at(p.name);
    for (std::int64_t i = 0; i < p.value.numel(); ++i) {
      diff = std::max(diff, std::abs(p.value.item(i) - r[static_cast<std::size_t>(i)]));
      scale = std::max(scale, std::abs(r[static_cast<std::size_t>(i)]));
    }
  }
  return diff / scale;
}

// Each "key = value" line of `bad`, under [optimizer.<name>], is rejected with an Error naming the key (its
// first `named_chars` characters, for a misspelt key that the message names through its closest key).
inline void expect_rejected(const Schema& s, const std::string& name, std::initializer_list<const char*> bad,
                            std::size_t named_chars = std::string::npos) {
  for (const char* line : bad) {
    try {
      Config::from_toml_string(s, "[optimizer." + name + "]\n" + line + "\n", "bad.toml");
      ADD_FAILURE() << "accepted " << line;
    } catch (const Error& e) {
      const std::string key = std::string(line).substr(0, std::string(line).find(' '));
      EXPECT_NE(std::string(e.what()).find(key.substr(0, named_chars)), std::string::npos) << e.what();
    }
  }
}

// Every key of the schema cites the reference its default comes from.
inline void expect_docs_cite(const Schema& s, const std::string& ref) {
  for (const auto& spec : s.specs()) EXPECT_NE(spec.doc.find(ref), std::string::npos) << spec.key;
}

}  // namespace quopt::testing
