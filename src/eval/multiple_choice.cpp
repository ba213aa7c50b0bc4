#include "eval/multiple_choice.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/tensor.hpp"
#include "io/tokenizer.hpp"
#include "model/olmo2.hpp"

namespace quopt {

namespace {

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::int32_t eos_token(const Tokenizer& tok) {
  const std::int32_t eos = tok.eos_id();
  QUOPT_CHECK(eos >= 0, "the tokenizer (", tok.origin(),
              ") has no end-of-sequence token, which stands in for an empty context; ",
              "use a tokenizer made by `quopt tokenize`");
  return eos;
}

Tensor host_copy(const Tensor& t) {
  return t.is_host() ? t : t.to(Device::Host);
}

// Index of the first maximum (numpy.argmax's tie rule).
std::int64_t first_argmax(const std::vector<double>& v) {
  std::int64_t best = 0;
  for (std::size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[static_cast<std::size_t>(best)]) best = static_cast<std::int64_t>(i);
  return best;
}

// Standard error of the mean of 0/1 outcomes with n - 1 in the variance (lm-evaluation-harness's
// mean_stderr: sample standard deviation / sqrt(n)).
double mean_stderr(double hits, std::int64_t n) {
  if (n < 2) return 0.0;
  const double nd = static_cast<double>(n), p = hits / nd;
  const double var = (hits * (1.0 - p) * (1.0 - p) + (nd - hits) * p * p) / (nd - 1.0);
  return std::sqrt(var / nd);
}

}  // namespace

void encode_choice_pair(const Tokenizer& tok, const std::string& context, const std::string& continuation,
                        std::vector<std::int32_t>& context_tokens,
                        std::vector<std::int32_t>& continuation_tokens) {
  if (context.empty()) {
    context_tokens = {eos_token(tok)};
    continuation_tokens = tok.encode(continuation);
    return;
  }
  // Trailing whitespace of the context belongs to the continuation (harness: n_spaces).
  std::size_t keep = context.size();
  while (keep > 0 && is_ascii_space(context[keep - 1])) --keep;
  const std::string ctx = context.substr(0, keep);
  const std::string cont = context.substr(keep) + continuation;
  const std::vector<std::int32_t> whole = tok.encode(ctx + cont);
  context_tokens = tok.encode(ctx);
  const std::size_t n_ctx = std::min(context_tokens.size(), whole.size());
  continuation_tokens.assign(whole.begin() + static_cast<std::ptrdiff_t>(n_ctx), whole.end());
  // A context that is only whitespace encodes to nothing: nothing would predict the first continuation
  // token, so EOS stands in as for an empty context.
  if (context_tokens.empty()) context_tokens = {eos_token(tok)};
}

std::vector<ChoiceRequest> build_choice_requests(const Tokenizer& tok, const std::vector<McExample>& examples,
                                                 std::int64_t vocab_size, std::int64_t seq_len,
                                                 const std::string& target_delimiter) {
  QUOPT_CHECK(seq_len >= 1, "model.seq_len must be >= 1, got ", seq_len);
  std::vector<ChoiceRequest> out;
  std::vector<std::int32_t> ctx, cont;
  for (const McExample& ex : examples) {
    const bool pretokenized = !ex.choice_tokens.empty();
    const std::size_t n_choices = ex.choices.size();
    if (n_choices < 2) fail("example ", ex.id, " has ", n_choices, " choices; at least 2 are needed");
    if (pretokenized && ex.choice_tokens.size() != n_choices)
      fail("example ", ex.id, " has ", ex.choice_tokens.size(), " tokenized choices but ", n_choices,
           " choice texts");
    if (ex.label < 0 || ex.label >= static_cast<std::int64_t>(n_choices))
      fail("example ", ex.id, ": label ", ex.label, " is out of range for ", n_choices, " choices");
    for (std::size_t c = 0; c < n_choices; ++c) {
      if (pretokenized) {
        ctx = ex.context_tokens.empty() ? std::vector<std::int32_t>{eos_token(tok)} : ex.context_tokens;
        cont = ex.choice_tokens[c];
      } else {
        encode_choice_pair(tok, ex.context, target_delimiter + ex.choices[c], ctx, cont);
      }
      const auto n_cont = static_cast<std::int64_t>(cont.size());
      if (n_cont == 0)
        fail("example ", ex.id, ", choice ", c, " (\"", ex.choices[c],
             "\"): the continuation encodes to no tokens, so it has no log-likelihood; give it some text");
      if (n_cont > seq_len)
        fail("example ", ex.id, ", choice ", c, ": the continuation has ", n_cont,
             " tokens, more than model.seq_len = ", seq_len,
             "; the model cannot score it (shorten the choice or use a model with a longer context)");
      ChoiceRequest r;
      r.tokens = ctx;
      r.tokens.insert(r.tokens.end(), cont.begin(), cont.end());
      for (const std::int32_t id : r.tokens)
        if (id < 0 || id >= vocab_size)
          fail("example ", ex.id, ", choice ", c, ": token id ", id, " is outside the model's vocabulary of ",
               vocab_size, " (tokenizer ", tok.origin(), " does not match the model)");
      const auto max_len = static_cast<std::size_t>(seq_len + 1);
      if (r.tokens.size() > max_len) {
        r.tokens.erase(r.tokens.begin(), r.tokens.end() - static_cast<std::ptrdiff_t>(max_len));
        r.truncated = true;
      }
      r.num_scored = n_cont;
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::vector<double> score_choice_requests(const Olmo2& model, const std::vector<ChoiceRequest>& requests,
                                          std::int64_t batch_rows) {
  QUOPT_CHECK(batch_rows >= 1, "evaluation batch size must be >= 1 rows, got ", batch_rows);
  const std::int64_t seq_len = model.config().seq_len;
  const double z = model.config().z_loss;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    const auto n = static_cast<std::int64_t>(r.tokens.size());
    QUOPT_CHECK(n >= 2 && n <= seq_len + 1 && r.num_scored >= 1 && r.num_scored < n, "scoring request ", i,
                " has ", n, " tokens and ", r.num_scored, " scored ones; expected 2..", seq_len + 1,
                " tokens with at least one context token");
  }
  // Longest first: rows of similar length share a batch and padding stays small.
  std::vector<std::size_t> order(requests.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return requests[a].tokens.size() > requests[b].tokens.size();
  });

  std::vector<double> loglik(requests.size(), 0.0);
  for (std::size_t begin = 0; begin < order.size(); begin += static_cast<std::size_t>(batch_rows)) {
    const std::size_t end = std::min(order.size(), begin + static_cast<std::size_t>(batch_rows));
    const auto B = static_cast<std::int64_t>(end - begin);
    const auto T = static_cast<std::int64_t>(requests[order[begin]].tokens.size()) - 1;
    Tensor in = Tensor::empty({B, T}, DType::I32), tgt = Tensor::empty({B, T}, DType::I32);
    std::int32_t* pin = in.data<std::int32_t>();
    std::int32_t* ptg = tgt.data<std::int32_t>();
    for (std::int64_t r = 0; r < B; ++r) {
      const ChoiceRequest& q = requests[order[begin + static_cast<std::size_t>(r)]];
      const auto L = static_cast<std::int64_t>(q.tokens.size()) - 1;
      for (std::int64_t j = 0; j < T; ++j) {
        const bool real = j < L;
        pin[r * T + j] = real ? q.tokens[static_cast<std::size_t>(j)] : 0;  // right padding, never scored
        ptg[r * T + j] = real && j >= L - q.num_scored ? q.tokens[static_cast<std::size_t>(j + 1)] : -1;
      }
    }
    Activations act;
    model.forward(in, tgt, act);
    const Tensor loss = host_copy(act.token_loss);
    const Tensor lse = z != 0.0 ? host_copy(act.lse) : Tensor();
    for (std::int64_t r = 0; r < B; ++r) {
      double sum = 0.0;
      for (std::int64_t j = 0; j < T; ++j) {
        const std::int64_t i = r * T + j;
        if (ptg[i] < 0) continue;
        double ce = loss.item(i);
        if (z != 0.0) ce -= z * lse.item(i) * lse.item(i);  // token_loss = CE + z * lse^2 (kernels/ops.hpp)
        sum -= ce;
      }
      loglik[order[begin + static_cast<std::size_t>(r)]] = sum;
    }
  }
  return loglik;
}

TaskResult evaluate_task(const Olmo2& model, const Tokenizer& tok, const std::vector<McExample>& examples,
                         std::int64_t batch_rows, const McOptions& opts) {
  QUOPT_CHECK(!examples.empty(), "task ", opts.name, " has no examples to evaluate");
  const ModelConfig& mc = model.config();
  const std::vector<ChoiceRequest> requests =
      build_choice_requests(tok, examples, mc.vocab_size, mc.seq_len, opts.target_delimiter);
  const std::vector<double> loglik = score_choice_requests(model, requests, batch_rows);

  TaskResult res;
  res.name = opts.name;
  res.n = static_cast<std::int64_t>(examples.size());
  double hits = 0.0, hits_norm = 0.0;
  std::size_t k = 0;
  for (const McExample& ex : examples) {
    ExampleScore s;
    s.id = ex.id;
    s.label = ex.label;
    std::vector<double> normed;
    for (std::size_t c = 0; c < ex.choices.size(); ++c, ++k) {
      s.loglik.push_back(loglik[k]);
      s.num_tokens.push_back(requests[k].num_scored);
      s.num_bytes.push_back(choice_bytes(ex.choices[c]));
      normed.push_back(loglik[k] / static_cast<double>(s.num_bytes.back()));
      res.truncated += requests[k].truncated ? 1 : 0;
    }
    s.pred = first_argmax(s.loglik);
    s.pred_norm = first_argmax(normed);
    hits += s.pred == ex.label ? 1.0 : 0.0;
    hits_norm += s.pred_norm == ex.label ? 1.0 : 0.0;
    if (opts.keep_examples) res.examples.push_back(std::move(s));
  }
  res.acc = hits / static_cast<double>(res.n);
  res.acc_norm = hits_norm / static_cast<double>(res.n);
  res.acc_stderr = mean_stderr(hits, res.n);
  res.acc_norm_stderr = mean_stderr(hits_norm, res.n);
  return res;
}

}  // namespace quopt
