#include "eval/validation.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "io/batch_loader.hpp"
#include "io/token_shard.hpp"
#include "model/olmo2.hpp"

namespace quopt {

namespace {

// The mean cross-entropy (z-loss removed) of each of the `rows` windows of one forward pass.
void append_window_losses(const Activations& act, const Tensor& tgt, std::int64_t rows, std::int64_t T,
                          double z, std::vector<double>& out) {
  const Tensor tl = act.token_loss.is_host() ? act.token_loss : act.token_loss.to(Device::Host);
  const Tensor lse = z == 0.0 ? Tensor() : act.lse.is_host() ? act.lse : act.lse.to(Device::Host);
  const std::int32_t* t = tgt.data<std::int32_t>();
  for (std::int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    std::int64_t n = 0;
    for (std::int64_t j = r * T; j < (r + 1) * T; ++j) {
      if (t[j] < 0) continue;
      sum += tl.item(j) - (z != 0.0 ? z * lse.item(j) * lse.item(j) : 0.0);
      ++n;
    }
    out.push_back(n ? sum / static_cast<double>(n) : 0.0);
  }
}

}  // namespace

ValidationResult evaluate_validation(const Olmo2& model, const TokenShard& shard, std::int64_t max_windows,
                                     std::int64_t batch_rows) {
  const ModelConfig& mc = model.config();
  QUOPT_CHECK(batch_rows >= 1, "validation batch size must be >= 1 rows, got ", batch_rows);
  QUOPT_CHECK(shard.vocab_size() <= static_cast<std::uint64_t>(mc.vocab_size), "token shard ", shard.path(),
              " was tokenized with a vocabulary of ", shard.vocab_size(),
              " but model.vocab_size = ", mc.vocab_size,
              "; evaluate with the shard made by the model's own tokenizer");
  const std::int64_t T = mc.seq_len;
  BatchLoader loader(shard, T, 0, BatchOrder::Sequential);
  const std::int64_t windows =
      max_windows <= 0 ? loader.num_windows() : std::min(max_windows, loader.num_windows());
  const double z = mc.z_loss;
  double sum = 0.0;
  std::int64_t count = 0;
  std::vector<double> window_loss;
  for (std::int64_t b = 0; b * batch_rows < windows; ++b) {
    // Sample s = b * batch_rows + row uses window s (Sequential order); the last batch may be short.
    const std::int64_t rows = std::min(batch_rows, windows - b * batch_rows);
    Tensor in, tgt;
    loader.load(b, batch_rows, 0, rows, in, tgt);
    Activations act;
    const LossSum ls = model.forward(in, tgt, act);
    double s = ls.sum;
    if (z != 0.0) {  // token_loss = CE + z * lse^2 (kernels/ops.hpp): remove the z-loss
      const Tensor lse = act.lse.is_host() ? act.lse : act.lse.to(Device::Host);
      const std::int32_t* t = tgt.data<std::int32_t>();
      for (std::int64_t i = 0; i < lse.numel(); ++i)
        if (t[i] >= 0) s -= z * lse.item(i) * lse.item(i);
    }
    sum += s;
    append_window_losses(act, tgt, rows, T, z, window_loss);
    count += ls.count;
  }
  ValidationResult r;
  r.windows = windows;
  r.window_loss = std::move(window_loss);
  r.tokens = count;
  r.loss = count ? sum / static_cast<double>(count) : 0.0;
  r.perplexity = std::exp(r.loss);
  return r;
}

}  // namespace quopt
