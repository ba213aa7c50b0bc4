#pragma once
// Shared helpers of the test_eval_* tests: synthetic text, a tiny SentencePiece tokenizer trained on it,
// a small random model with well-separated log-likelihoods, and a brute-force log-likelihood computed
// from the logits in double precision (independent of the cross-entropy kernel, padding and batching).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "io/tokenizer.hpp"
#include "model/olmo2.hpp"
#include "support/error_of.hpp"
#include "support/temp_dir.hpp"
#include "support/text_gen.hpp"

namespace quopt::evaltest {

using testing::error_of;

// The evaluation tests' text: 200 words, index floor(200 u^2), stream 11.
inline testing::TextGen eval_text(std::uint64_t seed) {
  return {seed, 11, 200, 2};
}

inline const Tokenizer& test_tokenizer() {
  static const Tokenizer tok = [] {
    auto gen = eval_text(3);
    std::vector<std::string> lines;
    for (int i = 0; i < 400; ++i) lines.push_back(gen.sentence());
    lines.push_back("caf\xC3\xA9 na\xC3\xAFve \xC3\xA9t\xC3\xA9");  // a few non-ASCII characters
    TokenizerTrainOptions o;
    o.vocab_size = 360;  // 256 byte pieces + 3 specials + ~100 merges/characters
    return Tokenizer::train_on_sentences(lines, o, "test sentences");
  }();
  return tok;
}

// A small model whose logits vary strongly (init_std 0.5 instead of OLMo2's 0.02), so the choices'
// log-likelihoods differ by much more than float rounding.
inline ModelConfig test_model_config(std::int64_t vocab, std::int64_t seq_len, double z_loss = 0.0) {
  ModelConfig c;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 4;
  c.vocab_size = vocab;
  c.seq_len = seq_len;
  c.z_loss = z_loss;
  c.init_std = 0.5;
  return c;
}

// Sum of log p(seq[i] | seq[0..i)) for i in [seq.size() - n_scored, seq.size()), from one unbatched
// forward pass and a log-softmax over the logits in double precision. seq.size() <= seq_len + 1.
inline double brute_loglik(const Olmo2& model, const std::vector<std::int32_t>& seq, std::int64_t n_scored) {
  const auto T = static_cast<std::int64_t>(seq.size()) - 1;
  Tensor in = Tensor::empty({1, T}, DType::I32), tgt = Tensor::empty({1, T}, DType::I32);
  for (std::int64_t j = 0; j < T; ++j) {
    in.data<std::int32_t>()[j] = seq[static_cast<std::size_t>(j)];
    tgt.data<std::int32_t>()[j] = seq[static_cast<std::size_t>(j + 1)];
  }
  Activations act;
  act.keep_logits = true;
  model.forward(in, tgt, act);
  const std::int64_t V = model.config().vocab_size;
  const float* lg = act.logits.data<float>();
  double total = 0.0;
  for (std::int64_t j = T - n_scored; j < T; ++j) {
    double mx = -1e300;
    for (std::int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(lg[j * V + v]));
    double s = 0.0;
    for (std::int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(lg[j * V + v]) - mx);
    total += static_cast<double>(lg[j * V + seq[static_cast<std::size_t>(j + 1)]]) - mx - std::log(s);
  }
  return total;
}

using testing::TempDir;

}  // namespace quopt::evaltest
