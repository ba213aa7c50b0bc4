#include "eval/token_outputs.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "io/batch_loader.hpp"
#include "io/token_shard.hpp"
#include "model/olmo2.hpp"

namespace quopt {

TokenOutputs model_token_outputs(const Olmo2& model, const TokenShard& shard, std::int64_t windows,
                                 std::int64_t batch_rows) {
  const ModelConfig& mc = model.config();
  QUOPT_CHECK(windows >= 1 && batch_rows >= 1, "token outputs need windows >= 1 and batch_rows >= 1, got ",
              windows, " and ", batch_rows);
  QUOPT_CHECK(shard.vocab_size() <= static_cast<std::uint64_t>(mc.vocab_size), "token shard ", shard.path(),
              " has a vocabulary of ", shard.vocab_size(), " but model.vocab_size = ", mc.vocab_size);
  QUOPT_CHECK(model.dtype() == DType::F32, "token outputs are written as f32; the model is ",
              dtype_name(model.dtype()));
  const std::int64_t T = mc.seq_len, V = mc.vocab_size;
  BatchLoader loader(shard, T, 0, BatchOrder::Sequential);
  const std::int64_t W = std::min(windows, loader.num_windows());
  TokenOutputs out{Tensor::empty({W, T}, DType::I32), Tensor::empty({W, T}, DType::I32),
                   Tensor::empty({W, T, V}, DType::F32), Tensor::empty({W, T}, DType::F32)};
  for (std::int64_t b = 0; b * batch_rows < W; ++b) {
    const std::int64_t first = b * batch_rows, rows = std::min(batch_rows, W - first);
    Tensor in, tgt;
    loader.load(b, batch_rows, 0, rows, in, tgt);
    Activations act;
    act.keep_logits = true;
    model.forward(in, tgt, act);
    const Tensor logits = act.logits.is_host() ? act.logits : act.logits.to(Device::Host);
    const Tensor lse = act.lse.is_host() ? act.lse : act.lse.to(Device::Host);
    const Tensor tok_loss = act.token_loss.is_host() ? act.token_loss : act.token_loss.to(Device::Host);
    const std::int64_t n = rows * T;
    std::memcpy(out.tokens.data<std::int32_t>() + first * T, in.data<std::int32_t>(), 4 * n);
    std::memcpy(out.targets.data<std::int32_t>() + first * T, tgt.data<std::int32_t>(), 4 * n);
    out.logits.slice(first, first + rows).copy_from(logits.reshape({rows, T, V}));
    float* loss = out.loss.data<float>() + first * T;
    for (std::int64_t i = 0; i < n; ++i)  // token_loss = CE + z * lse^2 (kernels/ops.hpp): drop the z-loss
      loss[i] = static_cast<float>(tok_loss.item(i) - mc.z_loss * lse.item(i) * lse.item(i));
  }
  return out;
}

}  // namespace quopt
